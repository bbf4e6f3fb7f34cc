package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wasmbed/wasmbed/internal/devicesim"
	"github.com/wasmbed/wasmbed/internal/pki"
)

func init() {
	register(command{name: "device sim", summary: "run N virtual devices against a gateway", run: runDeviceSim})
}

func runDeviceSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("device sim", stderr)
	count := fs.Int("count", 1, "number of virtual devices")
	gw := fs.String("gateway", "localhost:8443", "gateway host:port")
	serverName := fs.String("server-name", "", "name in the gateway's certificate (default: the host of --gateway)")
	caDir := fs.String("ca-dir", defaultPKIDir, "directory holding the CA (ca.crt, ca.key) that issues the devices' certificates")
	namespace := fs.String("namespace", "default", "namespace of the devices")
	prefix := fs.String("name-prefix", "sim-", "device names are PREFIX0, PREFIX1, ...")
	first := fs.Int("first", 0, "index of the first device")
	board := fs.String("board", "virtual", "board from the catalogue the devices claim")
	tls12 := fs.Bool("tls12", false, "connect with TLS 1.2")
	verbose := fs.Bool("v", false, "log sessions and applications")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *count < 1 {
		return fmt.Errorf("%w: --count must be at least 1", errUsage)
	}
	ca, err := pki.LoadCA(*caDir)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	fleet, err := devicesim.NewFleet(ctx, devicesim.Config{
		Gateway: *gw, ServerName: *serverName, CA: ca, Namespace: *namespace, NamePrefix: *prefix,
		First: *first, Count: *count, Board: *board, TLS12: *tls12, Logger: log,
	})
	if err != nil {
		return err
	}
	defer fleet.Close(context.Background())
	fmt.Fprintf(stdout, "%d virtual devices %s/%s%d..%d -> %s\n", *count, *namespace, *prefix, *first, *first+*count-1, *gw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n := 0
				for _, d := range fleet.Devices() {
					if d.Connected() {
						n++
					}
				}
				fmt.Fprintf(stdout, "%s connected %d/%d\n", time.Now().Format(time.TimeOnly), n, *count)
			}
		}
	}()
	err = fleet.Run(ctx)
	<-done
	return err
}
