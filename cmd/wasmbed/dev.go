package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wasmbed/wasmbed/config"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/controlplane"
	"github.com/wasmbed/wasmbed/internal/tracing"
	"github.com/wasmbed/wasmbed/platform"
)

func init() {
	register(command{
		name:    "dev",
		summary: "run the whole platform on this machine (what `make run` starts)",
		run:     runDev,
	})
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr)
	dir := fs.String("dir", ".run", "state directory (etcd data, certificates, kubeconfig, logs); survives restarts")
	binDir := fs.String("bin-dir", os.Getenv("KUBEBUILDER_ASSETS"), "folder with kube-apiserver, etcd and kubectl (from hack/k8s-binaries.sh)")
	apiPort := fs.Int("apiserver-port", controlplane.DefaultAPIServerPort, "loopback port of the kube-apiserver")
	etcdPort := fs.Int("etcd-port", controlplane.DefaultEtcdPort, "loopback port of etcd (the next port is its peer port)")
	devices := fs.Int("devices", 5, "number of virtual devices (sim-0, sim-1... in namespace default)")
	emulated := fs.String("emulated", "stm32f4-discovery,mps2-an386", "boards to emulate with QEMU next to the virtual devices (Devices emu-<board>; empty for none)")
	firmwareDir := fs.String("firmware-dir", "firmware/build", "firmware images of emulated boards (make -C firmware boards)")
	netBoard := fs.Bool("network-board", true, "also run the mps2-an386 network image (make -C firmware net) as Device emu-mps2-an386-net: a board that generates its key, enrolls with a bootstrap token and connects over its own TLS")
	artifactsURL := fs.String("artifacts", "", "artifact store: oci+http://127.0.0.1:<port>/<repository> for a registry on this machine, oci://... (default DIR/artifacts, a directory)")
	fetchAllow := fs.String("fetch-allow", "", "hosts prebuilt modules (oci and url sources) may be fetched from: host, host:port, *.domain or *, comma-separated; an OCI --artifacts registry is always added (default none)")
	verbose := fs.Bool("v", false, "debug logs")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *binDir == "" {
		return fmt.Errorf("%w: --bin-dir (or KUBEBUILDER_ASSETS) must name the folder hack/k8s-binaries.sh prints", errUsage)
	}
	allow, err := artifacts.ParseAllowList(*fetchAllow)
	if err != nil {
		return fmt.Errorf("%w: --fetch-allow: %v", errUsage, err)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logs := platform.NewLogs(stderr, level)
	log := logs.For("dev")
	// Every component runs here: one tracer provider, exporting where OTEL_* says
	// (docs/tracing.md), e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.
	stopTracing, err := tracing.Setup(ctx, "wasmbed")
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.Background()) }()

	cp, err := controlplane.Start(ctx, controlplane.Config{
		Dir: abs, BinDir: *binDir, APIServerPort: *apiPort, EtcdPort: *etcdPort,
		Logger: logs.For("apiserver"),
	})
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			log.Error("stop control plane", "err", err)
		}
		log.Info("stopped; state kept in " + abs + " (make clean-run wipes it)")
	}()
	if err := controlplane.InstallCRDs(ctx, cp.RESTConfig(), config.CRDs, "300-crds"); err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	log.Info("control plane ready", "apiserver", cp.Endpoint(), "kubeconfig", cp.Kubeconfig())

	p, err := platform.Start(ctx, platform.Config{
		REST: cp.RESTConfig(), Dir: abs, Ports: platform.DefaultPorts(), Devices: *devices, Logs: logs,
		EmulatedBoards: splitList(*emulated), FirmwareDir: *firmwareDir,
		NetworkBoards: *netBoard, NetworkBoardFirmware: netFirmware(*netBoard, *firmwareDir),
		Artifacts: *artifactsURL, FetchAllow: allow,
	})
	if err != nil {
		return fmt.Errorf("start platform: %w", err)
	}
	defer p.Stop()

	fetchFrom := p.FetchAllow().String()
	if fetchFrom == "" {
		fetchFrom = "no host (--fetch-allow)"
	}
	kubectl := filepath.Join(*binDir, "kubectl")
	examples, _ := filepath.Abs("examples")
	fmt.Fprintf(stdout, `
Wasmbed is running: apiserver %s, gateway %s (mTLS), broker http://%s, %d virtual devices, emulated boards %v
(and, with --network-board, emu-mps2-an386-net: a board with its own key and TLS).
Console: http://%s  (sign in with the token %s)
Prebuilt modules (oci, url) may be fetched from: %s
In another terminal:

  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl apply -f %s/blink-c.yaml
  kubectl get applications,devices -w
  wasmbed logs sim-0 -f --console http://%s   (more in docs/cli.md)

Ctrl-C stops everything; state is kept in %s (make clean-run wipes it).
`, cp.Endpoint(), p.Addr("gateway"), p.Addr("broker"), *devices, splitList(*emulated), p.Addr("console"), cp.Token(), fetchFrom, cp.Kubeconfig(), kubectl, examples, p.Addr("console"), abs)

	select {
	case <-ctx.Done():
		log.Info("stopping")
		return nil
	case <-p.Done():
		return fmt.Errorf("platform stopped: %w", p.Err())
	case why := <-cp.Exited():
		return fmt.Errorf("control plane stopped: %s", why)
	}
}

// netFirmware is the network image make -C firmware net builds, when asked for.
func netFirmware(on bool, firmwareDir string) string {
	if !on {
		return ""
	}
	return filepath.Join(firmwareDir, "mps2-an386-net", "firmware.elf")
}
