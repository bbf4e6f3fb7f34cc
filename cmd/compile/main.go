// Command compile is the compile function: a Knative Service that turns
// dev.wasmbed.build.requested events into modules (docs/events.md).
//
// Environment: PORT (default 8080); ARTIFACTS, the artifact store URL (a directory,
// file:///dir, oci://registry/repo or oci+http://host:port/repo); FETCH_ALLOW, the
// hosts prebuilt modules may be fetched from (entries separated by commas or spaces:
// host, host:port, *.domain or *; see artifacts.AllowList; default none, so OCI and
// URL sources are refused); WASM_OPT=false turns wasm-opt off; KUBECONFIG or the
// in-cluster account, for ConfigMap module sources.
package main

import (
	"fmt"
	"log/slog"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/functions/compile"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/eventserver"
)

func main() {
	eventserver.Main("compile", func(log *slog.Logger) (eventserver.Handler, error) {
		store, err := artifacts.NewFromURL(os.Getenv("ARTIFACTS"), artifacts.NewClientConfig())
		if err != nil {
			return nil, err
		}
		allow, err := artifacts.ParseAllowList(os.Getenv("FETCH_ALLOW"))
		if err != nil {
			return nil, fmt.Errorf("FETCH_ALLOW: %w", err)
		}
		if allow.Empty() {
			log.Info("FETCH_ALLOW is empty: prebuilt modules from OCI references and URLs will be refused")
		} else {
			log.Info("prebuilt modules may be fetched", "allow", allow.String())
		}
		cfg := compile.Config{Store: store, Optimize: os.Getenv("WASM_OPT") != "false", Logger: log,
			Fetch: artifacts.NewClientConfig().WithAllowList(allow)}
		if rc, err := ctrl.GetConfig(); err == nil {
			if cfg.Reader, err = client.New(rc, client.Options{}); err != nil {
				return nil, err
			}
		} else {
			log.Warn("no Kubernetes access: ConfigMap module sources will be refused", "err", err)
		}
		return compile.New(cfg)
	})
}
