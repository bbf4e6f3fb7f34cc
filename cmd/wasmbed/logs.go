package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/devicelog"
)

// Log polling and limits.
const (
	// logPollMin and logPollMax bound the polling interval of logs -f: it starts at
	// the minimum, doubles while nothing new arrives, and returns to it on new lines.
	logPollMin = time.Second
	logPollMax = 10 * time.Second
	// logRequestTimeout bounds one read of a device's log.
	logRequestTimeout = 15 * time.Second
	// gatewayHTTPPort names the port of a gateway's HTTP Service (<gateway>-http) that
	// serves GET /devices/{namespace}/{name}/log.
	gatewayHTTPPort = "http"
)

// logSource reads a device's log once.
type logSource func(ctx context.Context) (*devicelog.Log, error)

// permanentError marks a log read that will not succeed by retrying (refused, not
// found): logs -f stops on it.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type logsOptions struct {
	follow  bool
	since   time.Duration
	console string
}

func newLogsCommand(k *kubeFlags) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs DEVICE",
		Short: "print a device's console log lines, kept by the gateway holding its session",
		Long: `Print the log lines a device sent (its applications' log calls), oldest first, as the
gateway that holds its session keeps them (the last lines of each device). With -f it
keeps polling, printing only new lines: every second, backing off to every 10 seconds
while the device is quiet.

Two paths reach the gateway:
  --console URL   through the web console's API (GET /api/v1/namespaces/NS/devices/
                  NAME/log), authenticated with your kubeconfig's bearer token (or
                  --token) as the console expects users: it reads the Device as you, so
                  RBAC 'get devices' in the namespace is enough. This is the path in
                  make run (--console http://127.0.0.1:18000), and $WASMBED_CONSOLE sets it.
  (default)       through the apiserver's service proxy to the gateway's HTTP Service
                  <gateway>-http (port http), as 'kubectl get --raw' would: it needs
                  'get devices' in the device's namespace and 'get services/proxy' in
                  the gateway's namespace. It does not work in make run, whose gateway
                  runs on loopback without a Service.`,
		Example: `  # The last lines of sim-0
  wasmbed logs sim-0

  # Follow new lines of the last 10 minutes, through make run's console
  wasmbed logs sim-0 -f --since 10m --console http://127.0.0.1:18000`,
		Args: exactArgs(1, "the Device's name"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(cmd, k, "devices"), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := objectName("device", args[0]); err != nil {
				return err
			}
			if o.since < 0 {
				return usageError("--since must not be negative")
			}
			if !cmd.Flags().Changed("console") {
				o.console = os.Getenv("WASMBED_CONSOLE")
			}
			kc, err := k.connect()
			if err != nil {
				return err
			}
			src, err := newLogSource(kc, args[0], o.console)
			if err != nil {
				return err
			}
			return printLogs(cmd.Context(), src, cmd.OutOrStdout(), cmd.ErrOrStderr(), o, time.Now)
		},
	}
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().DurationVar(&o.since, "since", 0, "only lines newer than this, e.g. 10m (0: every kept line)")
	cmd.Flags().StringVar(&o.console, "console", "", "read through the web console at this URL instead of the apiserver's service proxy (default $WASMBED_CONSOLE)")
	k.bind(cmd.Flags())
	return cmd
}

// newLogSource returns the path to a device's log: the console at consoleURL when set,
// else the apiserver's service proxy to the device's gateway.
func newLogSource(kc *kube, device, consoleURL string) (logSource, error) {
	ns := kc.namespace
	if consoleURL == "" {
		return proxyLogSource(kc, ns, device)
	}
	u, err := url.Parse(consoleURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("--console %q: want the console's http:// or https:// URL", consoleURL)
	}
	token, err := bearerToken(kc.rest)
	if err != nil {
		return nil, err
	}
	endpoint := strings.TrimSuffix(u.String(), "/") + "/api/v1/namespaces/" + url.PathEscape(ns) + "/devices/" + url.PathEscape(device) + "/log"
	hc := &http.Client{Timeout: logRequestTimeout}
	return func(ctx context.Context) (*devicelog.Log, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return nil, fmt.Errorf("console request: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("console %s: %w", u.Host, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, devicelog.MaxBody+1))
		if err != nil {
			return nil, fmt.Errorf("read console answer: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			err := fmt.Errorf("console answered %s: %s", resp.Status, consoleError(body))
			if resp.StatusCode < 500 {
				err = &permanentError{err}
			}
			return nil, err
		}
		return devicelog.Decode(body)
	}, nil
}

// consoleError is the message of a console error answer ({"error", "detail"}).
func consoleError(body []byte) string {
	var e struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		if e.Detail != "" {
			return devicelog.Sanitize(e.Error + ": " + e.Detail)
		}
		return devicelog.Sanitize(e.Error)
	}
	return devicelog.Sanitize(strings.TrimSpace(string(body[:min(len(body), 512)])))
}

// bearerToken is the kubeconfig user's token, which the console takes as the user's.
func bearerToken(cfg *rest.Config) (string, error) {
	if cfg.BearerToken != "" {
		return cfg.BearerToken, nil
	}
	if cfg.BearerTokenFile != "" {
		b, err := os.ReadFile(cfg.BearerTokenFile)
		if err != nil {
			return "", fmt.Errorf("read the kubeconfig's token file: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	}
	return "", usageError("the console signs users in with a bearer token, and the kubeconfig's user has none (it uses client certificates or an exec plugin): pass --token, or leave out --console to go through the apiserver")
}

// proxyLogSource reads the log from the device's gateway through the apiserver's
// service proxy, as `kubectl get --raw /api/v1/namespaces/NS/services/GW-http:http/proxy/...`.
func proxyLogSource(kc *kube, ns, device string) (logSource, error) {
	cs, err := kubernetes.NewForConfig(kc.rest)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return func(ctx context.Context) (*devicelog.Log, error) {
		ctx, cancel := context.WithTimeout(ctx, logRequestTimeout)
		defer cancel()
		var d v1.Device
		if err := kc.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: device}, &d); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				return nil, &permanentError{fmt.Errorf("device %s/%s: %w", ns, device, err)}
			}
			return nil, fmt.Errorf("get device %s/%s: %w", ns, device, err)
		}
		gw := d.GatewayRef(v1.Ref{})
		if gw.IsZero() {
			return &devicelog.Log{Device: d.Ref().String(), Lines: []devicelog.Line{},
				Note: "the device has not connected to a gateway yet: start it and check its certificate"}, nil
		}
		path := "devices/" + url.PathEscape(ns) + "/" + url.PathEscape(device) + "/log"
		stream, err := cs.CoreV1().Services(gw.Namespace).ProxyGet("http", gw.Name+"-http", gatewayHTTPPort, path, nil).Stream(ctx)
		if err != nil {
			err = fmt.Errorf("gateway %s through the apiserver's service proxy: %w", gw, err)
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) {
				err = &permanentError{err}
			}
			return nil, err
		}
		defer stream.Close()
		body, err := io.ReadAll(io.LimitReader(stream, devicelog.MaxBody+1))
		if err != nil {
			return nil, fmt.Errorf("read gateway %s answer: %w", gw, err)
		}
		l, err := devicelog.Decode(body)
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", gw, err)
		}
		l.Gateway = gw.String()
		return l, nil
	}, nil
}

// printLogs prints the device's lines (newer than --since) and, with -f, polls for new
// ones with backoff until ctx ends or a read fails for good.
func printLogs(ctx context.Context, src logSource, out, errOut io.Writer, o logsOptions, now func() time.Time) error {
	cur := &devicelog.Cursor{}
	if o.since > 0 {
		cur = devicelog.Since(now().Add(-o.since))
	}
	first := true
	interval := logPollMin
	for {
		l, err := src(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil && (!o.follow || isPermanent(err)):
			return err
		case err != nil:
			fmt.Fprintf(errOut, "warning: %v (retrying in %s)\n", err, interval)
			interval = min(interval*2, logPollMax)
		default:
			lines := cur.Next(l.Lines)
			for _, line := range lines {
				fmt.Fprintln(out, devicelog.Format(line))
			}
			if first && len(lines) == 0 {
				note := l.Note
				if note == "" {
					note = "no log lines"
					if o.since > 0 {
						note += " in the last " + o.since.String()
					}
				}
				connected := "not connected"
				if l.Connected {
					connected = "connected"
				}
				fmt.Fprintf(errOut, "%s (%s): %s\n", devicelog.Sanitize(l.Device), connected, devicelog.Sanitize(note))
			}
			first = false
			if len(lines) > 0 {
				interval = logPollMin
			} else {
				interval = min(interval*2, logPollMax)
			}
		}
		if !o.follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
