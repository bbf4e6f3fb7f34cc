package qemutest

import (
	"context"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
	"github.com/wasmbed/wasmbed/testdata/corpus"
)

// TestCorpusOnTheM4 runs every module of testdata/corpus (clang 19 and rustc 1.96, default
// features and WebAssembly 1.0) on the emulated Cortex-M4, on the firmware built with the
// nRF52840's budget (16 KiB modules, a 64 KiB page of linear memory, the native tier):
// each must log, call after call, what the Go oracle computes, as on the virtual devices
// (firmware/hosttest's TestCorpusRunsAlike).
func TestCorpusOnTheM4(t *testing.T) {
	requireTools(t)
	mods, err := corpus.Modules()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b := startQEMU(ctx, t, "mps2-an386", fwbuild.BudgetImage(t, "mps2-an386", "nrf52840-nano33ble"))
	_, maxFrame := b.hello()
	for _, m := range mods {
		b.deploy(ctx, "corpus", m.Wasm, maxFrame)
		b.send(&protocol.Start{App: "corpus"})
		b.status(ctx, "corpus", protocol.StateRunning)
		for call := range 3 {
			want, err := corpus.Expected(m.Program, call)
			if err != nil {
				t.Fatal(err)
			}
			line := b.next(ctx, m.Name()+"'s log line", func(msg protocol.Message) bool {
				l, ok := msg.(*protocol.Log)
				return ok && l.App == "corpus" && len(l.Message) > len(m.Program) && l.Message[:len(m.Program)+1] == m.Program+" "
			}).(*protocol.Log)
			if line.Message != want {
				t.Errorf("%s call %d logged %q, want %q", m.Name(), call, line.Message, want)
			}
		}
		t.Logf("%s: %d bytes, 3 calls as the oracle says", m.Name(), len(m.Wasm))
	}
}
