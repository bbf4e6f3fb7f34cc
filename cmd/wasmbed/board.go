package main

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"

	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/emulation/manager"
	"github.com/wasmbed/wasmbed/internal/pki"
)

func init() {
	register(command{name: "board run", summary: "run one emulated board (QEMU or Renode) as a device of a gateway", run: runBoardRun})
	register(command{name: "board list", summary: "list the board catalogue and how each board is emulated", run: runBoardList})
}

func runBoardRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("board run", stderr)
	board := fs.String("board", "stm32f4-discovery", "board from the catalogue (wasmbed board list)")
	device := fs.String("device", "", "the device the board is, <namespace>/<name> (required)")
	gw := fs.String("gateway", "127.0.0.1:18443", "gateway host:port")
	serverName := fs.String("server-name", "", "name in the gateway's certificate (default: the host of --gateway)")
	caCert := fs.String("ca-cert", filepath.Join(defaultPKIDir, pki.CACertFile), "the platform CA's certificate, which verifies the gateway (its key is not needed)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the apiserver whose operator signs the board's certificate request; the user needs wasmbed-device-enroller and wasmbed-device-csr-requester (default: $KUBECONFIG, ~/.kube/config)")
	firmware := fs.String("firmware", "", "firmware ELF (default: "+manager.DefaultFirmwareDir+"/<board>/firmware.elf)")
	port := fs.Int("uart-port", 0, "loopback port of the board's UART (default: a free port)")
	preferRenode := fs.Bool("renode", false, "run on Renode when installed, for boards QEMU also runs")
	verbose := fs.Bool("v", false, "log bridge sessions and frames")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ns, name, ok := strings.Cut(*device, "/")
	if !ok {
		return fmt.Errorf("%w: --device must be <namespace>/<name>", errUsage)
	}
	id, err := pki.NewIdentity(ns, name)
	if err != nil {
		return fmt.Errorf("%w: --device: %v", errUsage, err)
	}
	if _, err := boards.Lookup(*board); err != nil {
		return fmt.Errorf("%w: --board: %v", errUsage, err)
	}
	if *firmware == "" {
		*firmware = manager.DefaultFirmwareDir + "/" + *board + "/firmware.elf"
	}
	caPEM, err := os.ReadFile(*caCert)
	if err != nil {
		return fmt.Errorf("ca certificate: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("ca certificate %s: no PEM certificate", *caCert)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := k8sruntime.NewScheme()
	if err := certificatesv1.AddToScheme(scheme); err != nil {
		return err
	}
	kc, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	creds, err := manager.NewCredentials(id)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	b, err := manager.StartBoard(ctx, manager.BoardConfig{
		Board: *board, Firmware: *firmware, Credentials: creds, Enroll: &manager.EnrollConfig{Client: kc},
		Gateway: *gw, ServerName: *serverName, RootCAs: roots, Port: *port,
		Runner: manager.NewRunner().WithPreferRenode(*preferRenode), Logger: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "board %s as %s -> %s (uart on 127.0.0.1:%d): %s\n", *board, id, *gw, b.Port(),
		strings.Join(b.Emulator().CommandLine(), " "))
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.Stop()
			fmt.Fprintf(stdout, "stopped; last console output:\n%s", boardTail(b.ConsoleLog(), 2048))
			return nil
		case <-t.C:
			fmt.Fprintf(stdout, "%s connected=%v emulator running=%v restarts=%d\n", time.Now().Format(time.TimeOnly),
				b.Connected(), b.Emulator().Running(), b.Emulator().Restarts())
		}
	}
}

// boardTail returns the last n bytes of b.
func boardTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func runBoardList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("board list", stderr)
	output := fs.String("output", "", "output format: json, yaml, wide or name (default: a table)")
	fs.StringVar(output, "o", "", "output format (as --output)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "" {
		return printBoards(stdout, *output)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BOARD\tMCU\tRAM\tFLASH\tAPP MEMORY\tEMULATOR\tMACHINE\tUART\tRENODE PLATFORM")
	for _, b := range boards.All() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.MCU, boardSize(b.RAMBytes), boardSize(b.FlashBytes),
			boardSize(b.AppMemoryBytes), b.Emulator, boardDash(b.Machine), boardDash(b.UART), boardDash(b.RenodePlatform))
	}
	return w.Flush()
}

func boardSize(n int64) string {
	if n >= boards.MiB && n%boards.MiB == 0 {
		return fmt.Sprintf("%d MiB", n/boards.MiB)
	}
	return fmt.Sprintf("%d KiB", n/boards.KiB)
}

func boardDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
