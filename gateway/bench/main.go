// Command bench measures the gateway against a plain goroutine-per-connection Go TLS
// echo server, with the same TLS configuration, in one run: memory per idle mTLS
// session, full handshakes per second per core (server CPU time) and the time to
// deliver a module to every connected device. Servers and clients run in separate
// processes (this program re-executes itself) so that each server is measured alone.
//
// It fails when the fan-out takes more than -max-ratio times the baseline's.
//
//	go run ./gateway/bench -sessions 10000 -fanout-module 32768
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"
)

var (
	role        = flag.String("role", "", "internal: server or client")
	mode        = flag.String("mode", "", "internal: gateway or baseline")
	addr        = flag.String("addr", "", "internal: server address")
	pkiDir      = flag.String("pki", "", "internal: CA directory")
	sessions    = flag.Int("sessions", 10000, "idle sessions to hold for the memory figure and the fan-out")
	churnFor    = flag.Duration("churn", 5*time.Second, "how long to measure handshakes")
	churners    = flag.Int("churners", 32, "concurrent connecting clients during the handshake measurement")
	moduleSize  = flag.Int("fanout-module", 32<<10, "module size delivered to every session")
	modes       = flag.String("modes", "baseline,gateway", "servers to measure")
	heapProfile = flag.String("heap-profile", "", "write each server's heap profile with idle sessions to FILE.<mode>")
	run         = flag.Bool("run-apps", false, "gateway fan-out: instantiate the module on every device (default: verify and report Running without running it)")
	device      = flag.String("device", "lean", "gateway clients: lean (the protocol and nothing else, see device.go) or sim (internal/devicesim, a whole virtual device)")
	maxRatio    = flag.Float64("max-ratio", 1.5, "fail when the gateway's fan-out takes longer than this many times the baseline's in the same run (0: report only)")
	cpuProfile  = flag.String("fanout-profile", "", "write CPU profiles of each server and its clients during the fan-out to FILE.<mode>.server and FILE.<mode>.client")
)

func main() {
	flag.Parse()
	var err error
	switch *role {
	case "server":
		err = serverMain()
	case "client":
		err = clientMain()
	default:
		err = coordinate()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// proc is a child process driven by line commands on stdin, answering one line each.
type proc struct {
	cmd *exec.Cmd
	in  *bufio.Writer
	out *bufio.Scanner
}

func start(args ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	// Goroutines start with the minimum stack instead of the running average: the
	// average is inflated by TLS handshakes, and a session's stack never shrinks back.
	// docs/gateway.md sets the same for the gateway's Deployment.
	cmd.Env = append(os.Environ(), "GODEBUG=adaptivestackstart=0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	return &proc{cmd: cmd, in: bufio.NewWriter(stdin), out: sc}, nil
}

// ask sends a command and returns the answer's fields.
func (p *proc) ask(format string, args ...any) ([]string, error) {
	fmt.Fprintf(p.in, format+"\n", args...)
	if err := p.in.Flush(); err != nil {
		return nil, err
	}
	if !p.out.Scan() {
		return nil, fmt.Errorf("child ended: %v", p.out.Err())
	}
	f := strings.Fields(p.out.Text())
	if len(f) > 0 && f[0] == "error" {
		return nil, fmt.Errorf("child: %s", p.out.Text())
	}
	return f, nil
}

func (p *proc) stop() {
	_, _ = p.ask("quit")
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

type result struct {
	mode                 string
	heapPerSession       float64
	rssPerSession        float64
	goroutinesPerSession float64
	handshakes           int
	serverCPU            float64
	fanout               time.Duration
	fanoutServerCPU      float64
	fanoutClientCPU      float64
}

func coordinate() error {
	if *run && *device == "lean" {
		return fmt.Errorf("-run-apps needs -device sim: lean devices never run a module")
	}
	dir, err := os.MkdirTemp("", "wasmbed-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ca, err := pki.NewCA("bench ca", 24*time.Hour)
	if err != nil {
		return err
	}
	if err := ca.Save(dir, true); err != nil {
		return err
	}
	fmt.Printf("sessions=%d churn=%v churners=%d module=%d bytes, GOMAXPROCS per process=%s\n",
		*sessions, *churnFor, *churners, *moduleSize, envOr("GOMAXPROCS", "all cores"))
	var results []result
	for _, m := range strings.Split(*modes, ",") {
		r, err := measure(m, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		results = append(results, r)
	}
	fmt.Println()
	fmt.Printf("| server | Go heap+stack per idle session | RSS per idle session | goroutines per idle session | full handshakes per server core-second | fan-out of %d KiB to %d sessions |\n", *moduleSize>>10, *sessions)
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %s | %.1f KiB | %.1f KiB | %.2f | %.0f (%d in %.2f s CPU) | %.2f s |\n", r.mode,
			r.heapPerSession/1024, r.rssPerSession/1024, r.goroutinesPerSession,
			float64(r.handshakes)/r.serverCPU, r.handshakes, r.serverCPU, r.fanout.Seconds())
	}
	return checkRatio(results)
}

// checkRatio reports the gateway's fan-out against the baseline's of the same run, as
// a ratio because absolute times on shared machines vary by half between runs, and
// fails when it is above -max-ratio. The CPU ratios say which side the difference is
// on: the devices run on the same cores and are part of the wall time.
func checkRatio(results []result) error {
	var base, gw *result
	for i := range results {
		switch results[i].mode {
		case "baseline":
			base = &results[i]
		case "gateway":
			gw = &results[i]
		}
	}
	if base == nil || gw == nil || base.fanout <= 0 {
		return nil
	}
	ratio := gw.fanout.Seconds() / base.fanout.Seconds()
	fmt.Printf("\nfan-out, gateway / baseline: %.2fx wall time (target <= %.2fx, %s devices), CPU %.2fx server, %.2fx clients\n",
		ratio, *maxRatio, *device, gw.fanoutServerCPU/base.fanoutServerCPU, gw.fanoutClientCPU/base.fanoutClientCPU)
	if *maxRatio > 0 && ratio > *maxRatio {
		return fmt.Errorf("fan-out ratio %.2fx is above the target %.2fx", ratio, *maxRatio)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func num(f []string, key string) float64 {
	for _, kv := range f {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			x, _ := strconv.ParseFloat(v, 64)
			return x
		}
	}
	return 0
}

func measure(m, dir string) (result, error) {
	r := result{mode: m}
	srv, err := start("-role", "server", "-mode", m, "-pki", dir, "-fanout-module", strconv.Itoa(*moduleSize), fmt.Sprintf("-run-apps=%v", *run))
	if err != nil {
		return r, err
	}
	defer srv.stop()
	f, err := srv.ask("addr")
	if err != nil {
		return r, err
	}
	address := f[1]
	cli, err := start("-role", "client", "-mode", m, "-pki", dir, "-addr", address, fmt.Sprintf("-run-apps=%v", *run),
		"-device", *device, "-fanout-module", strconv.Itoa(*moduleSize))
	if err != nil {
		return r, err
	}
	defer cli.stop()

	base, err := srv.ask("mem")
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	if _, err := cli.ask("connect %d", *sessions); err != nil {
		return r, err
	}
	if _, err := srv.ask("wait %d", *sessions); err != nil {
		return r, err
	}
	fmt.Printf("%s: %d sessions connected in %v\n", m, *sessions, time.Since(t0).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	full, err := srv.ask("mem")
	if err != nil {
		return r, err
	}
	n := float64(*sessions)
	r.heapPerSession = (num(full, "heapstack") - num(base, "heapstack")) / n
	r.rssPerSession = (num(full, "rss") - num(base, "rss")) / n
	r.goroutinesPerSession = (num(full, "goroutines") - num(base, "goroutines")) / n
	fmt.Printf("%s: idle memory %v -> %v\n", m, base[1:], full[1:])
	if *heapProfile != "" {
		if _, err := srv.ask("pprof %s", *heapProfile+"."+m); err != nil {
			return r, err
		}
	}

	if err := measureFanout(&r, srv, cli); err != nil {
		return r, err
	}
	fmt.Printf("%s: fan-out %v, CPU %.2f s server + %.2f s clients\n", m, r.fanout.Round(time.Millisecond),
		r.fanoutServerCPU, r.fanoutClientCPU)

	if _, err := cli.ask("close"); err != nil {
		return r, err
	}
	if _, err := srv.ask("wait 0"); err != nil {
		return r, err
	}
	c0, err := srv.ask("cpu")
	if err != nil {
		return r, err
	}
	f, err = cli.ask("churn %d %d", churnFor.Milliseconds(), *churners)
	if err != nil {
		return r, err
	}
	c1, err := srv.ask("cpu")
	if err != nil {
		return r, err
	}
	r.handshakes = int(num(f, "count"))
	r.serverCPU = num(c1, "seconds") - num(c0, "seconds")
	fmt.Printf("%s: %d handshakes in %v using %.2f s of server CPU\n", m, r.handshakes, *churnFor, r.serverCPU)
	return r, nil
}

// measureFanout times one delivery to every session and the CPU time the server and
// its clients spent on it (both share the machine's cores), profiling both if asked.
func measureFanout(r *result, srv, cli *proc) error {
	if *cpuProfile != "" {
		for _, p := range []struct {
			p    *proc
			role string
		}{{srv, "server"}, {cli, "client"}} {
			if _, err := p.p.ask("profile start %s.%s.%s", *cpuProfile, r.mode, p.role); err != nil {
				return err
			}
		}
	}
	s0, err := srv.ask("cpu")
	if err != nil {
		return err
	}
	c0, err := cli.ask("cpu")
	if err != nil {
		return err
	}
	f, err := srv.ask("fanout %d", *sessions)
	if err != nil {
		return err
	}
	r.fanout = time.Duration(num(f, "seconds") * float64(time.Second))
	s1, err := srv.ask("cpu")
	if err != nil {
		return err
	}
	c1, err := cli.ask("cpu")
	if err != nil {
		return err
	}
	r.fanoutServerCPU = num(s1, "seconds") - num(s0, "seconds")
	r.fanoutClientCPU = num(c1, "seconds") - num(c0, "seconds")
	if *cpuProfile != "" {
		for _, p := range []*proc{srv, cli} {
			if _, err := p.ask("profile stop"); err != nil {
				return err
			}
		}
	}
	return nil
}
