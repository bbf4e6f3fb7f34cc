package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wasmbed/wasmbed/config"
	"github.com/wasmbed/wasmbed/internal/controlplane"
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *binDir == "" {
		return fmt.Errorf("%w: --bin-dir (or KUBEBUILDER_ASSETS) must name the folder hack/k8s-binaries.sh prints", errUsage)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	base := slog.New(slog.NewTextHandler(stderr, nil))
	log := base.With("component", "dev")

	cp, err := controlplane.Start(ctx, controlplane.Config{
		Dir: abs, BinDir: *binDir, APIServerPort: *apiPort, EtcdPort: *etcdPort,
		Logger: base.With("component", "controlplane"),
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

	kubectl := filepath.Join(*binDir, "kubectl")
	fmt.Fprintf(stdout, `
Wasmbed is running. In another terminal:

  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl get devices,applications,gateways

Ctrl-C stops everything; state is kept in %s.
`, cp.Kubeconfig(), kubectl, abs)

	select {
	case <-ctx.Done():
		log.Info("stopping")
		return nil
	case why := <-cp.Exited():
		return fmt.Errorf("control plane stopped: %s", why)
	}
}
