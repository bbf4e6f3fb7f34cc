package nettest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// instructionsPerClock: under QEMU -icount shift=0 an instruction takes 1 ns of virtual
// time and SysTick counts the MPS2's 25 MHz clock, so one core clock the firmware
// counts (net/net.h, wbn_clocks) is 40 instructions.
const instructionsPerClock = 40

// clocks returns the number before "core clocks" on the first console line holding s.
func (b *board) clocks(s string) float64 {
	b.t.Helper()
	re := regexp.MustCompile(`(\d+) core clocks`)
	for _, l := range b.console.Lines() {
		if strings.Contains(l, s) {
			if m := re.FindStringSubmatch(l); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				return v
			}
		}
	}
	b.t.Fatalf("no console line with %q and a clock count", s)
	return 0
}

// BenchmarkIdentityM4 counts what the board's identity costs on the emulated Cortex-M4
// (QEMU -icount shift=0: instruction counts, docs/performance.md): key generation, the
// CSR's signature, the enrollment handshake (no client certificate) and the session
// handshake (mutual, TLS 1.2 ECDHE-ECDSA-AES-128-GCM over P-256). CPU only: the time a
// handshake waits for the network is not counted.
func BenchmarkIdentityM4(b *testing.B) {
	requireTools(b)
	elf := fwbuild.NetImage(b, "mps2-an386")
	ca, err := pki.NewCA("platform", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	key, err := pki.NewSigningKey()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		id := pki.Identity{Namespace: "default", Name: fmt.Sprintf("bench-%d", i)}
		token := fmt.Sprintf("bench-token-%d-0123456789abcdef", i)
		g := newGateway(b, ca, key, token+" "+id.String()+"\n")
		bd := boot(ctx, b, provisioned(b, elf, id, token, ca, key), g, "-icount", "shift=0")
		bd.wait("net: gateway: connected", 1, 2*time.Minute)
		b.ReportMetric(bd.clocks("generated a P-256 device key")*instructionsPerClock, "keygen-instr")
		b.ReportMetric(bd.clocks("CSR signed in")*instructionsPerClock, "csr-instr")
		b.ReportMetric(bd.clocks("enroll: certificate")*instructionsPerClock, "enroll-handshake-instr")
		b.ReportMetric(bd.clocks("gateway: connected")*instructionsPerClock, "handshake-instr")
		cancel()
	}
}

// bigApp is a C application whose module is about size bytes: a table in its data.
func bigApp(size int) string {
	return fmt.Sprintf(`#include "wasmbed.h"
static const unsigned char table[%d] = {[0] = 1, [%d] = 2};
static unsigned n;
WASMBED_EXPORT(loop) int32_t loop(void) {
    static const char msg[] = "big tick";
    n = (n + 7919) %% sizeof table;
    wasmbed_log(WASMBED_LOG_INFO, msg, sizeof msg - 1 - (table[n] > 100));
    return 1000;
}
`, size, size-1)
}

// BenchmarkTransferEthernet delivers a 56 KB module to the network image over TLS and
// Ethernet, from the deployment request to the board's Running report, in wall-clock
// time (as the UART's ~10 KB/s in docs/performance.md was measured).
func BenchmarkTransferEthernet(b *testing.B) {
	requireTools(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	elf := fwbuild.NetImage(b, "mps2-an386")
	ca, err := pki.NewCA("platform", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	key, err := pki.NewSigningKey()
	if err != nil {
		b.Fatal(err)
	}
	id := pki.Identity{Namespace: "default", Name: "bench-transfer"}
	token := "bench-transfer-token-0123456789"
	g := newGateway(b, ca, key, token+" "+id.String()+"\n")
	bd := boot(ctx, b, provisioned(b, elf, id, token, ca, key), g)
	bd.wait("net: gateway: connected", 1, time.Minute)
	waitFor(b, 30*time.Second, func() bool { return g.srv.Connected(id) }, "no session")
	var bytes int
	var took time.Duration
	for i := 0; i < b.N; i++ {
		res, err := builder.Build(ctx, builder.Request{Language: builder.C, Source: []byte(bigApp(56000 + i))})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		g.deploy(ctx, "big", id.Name, res.Module, int64(i+1)) // a new version replaces the last
		digest := sha256.Sum256(res.Module)
		waitFor(b, 2*time.Minute, func() bool {
			return g.events.count(events.DeploymentSucceeded, `"device":"bench-transfer"`, hex.EncodeToString(digest[:]), "Running") > 0
		}, "version %d not Running; gateway log:\n%s", i+1, g.logs)
		took += time.Since(start)
		bytes += len(res.Module)
		if i == 0 {
			b.ReportMetric(float64(len(res.Module)), "module-bytes")
		}
	}
	b.ReportMetric(float64(bytes)/took.Seconds()/1000, "kB/s")
}
