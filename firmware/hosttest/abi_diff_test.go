package hosttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/internal/wasmhost"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

// run drives one module for setup and n loops on the Go host (wazero, the validator's
// and the virtual devices' engine) and returns the same trace format as Board.
func runGo(t *testing.T, host *wasmhost.Host, bin []byte, cfgKey, cfgVal string, n int) (trace string, delays []int32) {
	t.Helper()
	ctx := context.Background()
	clock := wasmhost.NewSimClock(time.Unix(1000, 0))
	cfg := map[string]string{}
	if cfgKey != "" {
		cfg[cfgKey] = cfgVal
	}
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{Clock: clock, Config: cfg})
	mod, err := host.Compile(ctx, bin)
	if err != nil {
		t.Fatalf("go compile: %v", err)
	}
	app, err := host.Instantiate(ctx, mod, board)
	if err != nil {
		t.Fatalf("go instantiate: %v", err)
	}
	defer app.Close(ctx)
	if err := app.Setup(ctx); err != nil {
		t.Fatalf("go setup: %v", err)
	}
	for i := 0; i < n; i++ {
		d, exited, err := app.Loop(ctx)
		if err != nil {
			t.Fatalf("go loop %d: %v", i, err)
		}
		ms := int32(d / time.Millisecond)
		if exited {
			ms = -1
		}
		delays = append(delays, ms)
		if exited {
			break
		}
		clock.Advance(d)
	}
	var sb strings.Builder
	for _, l := range board.Logs() {
		fmt.Fprintf(&sb, "log %d %s\n", l.Level, l.Message)
	}
	for _, c := range board.LEDChanges() {
		on := 0
		if c.On {
			on = 1
		}
		fmt.Fprintf(&sb, "led %d %d\n", c.LED, on)
	}
	for _, r := range board.Records() {
		fmt.Fprintf(&sb, "publish %s %s\n", r.Topic, r.Data)
	}
	return sb.String(), delays
}

func runC(t *testing.T, bin []byte, cfgKey, cfgVal string, n int) (trace string, delays []int32) {
	t.Helper()
	s := wasmhost.DefaultSensors()
	b := NewBoard([4]int32{s[0], s[1], s[2], s[3]}, cfgKey, cfgVal)
	defer b.Close()
	if err := b.Start(bin); err != nil {
		t.Fatalf("C start: %v", err)
	}
	for i := 0; i < n; i++ {
		d, err := b.Loop()
		if err != nil {
			t.Fatalf("C loop %d: %v", i, err)
		}
		if d < 0 {
			delays = append(delays, -1)
			break
		}
		delays = append(delays, d)
		b.Advance(int64(d))
	}
	// Same order as runGo: logs, then LED changes, then records.
	var logs, leds, pubs []string
	for _, l := range strings.SplitAfter(b.Trace(), "\n") {
		switch {
		case strings.HasPrefix(l, "log "):
			logs = append(logs, l)
		case strings.HasPrefix(l, "led "):
			leds = append(leds, l)
		case strings.HasPrefix(l, "publish "):
			pubs = append(pubs, l)
		}
	}
	return strings.Join(logs, "") + strings.Join(leds, "") + strings.Join(pubs, ""), delays
}

// TestExamplesAgreeWithWazero runs the project's example applications (built with the
// real toolchains) and the ABI test modules on the device runtime (C) and on the Go host
// (wazero) on equal simulated boards: the same log lines, LED changes, telemetry and
// loop delays must come out.
func TestExamplesAgreeWithWazero(t *testing.T) {
	ctx := context.Background()
	host, err := wasmhost.NewHost(ctx, wasmhost.NewHostConfig().WithCallBudget(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	type mod struct {
		name           string
		bin            []byte
		cfgKey, cfgVal string
	}
	mods := []mod{
		{"fixture blink", fixtures.Blink, "", ""},
		{"fixture sensor", fixtures.Sensor, "", ""},
		{"fixture config", fixtures.Config, "period_ms", "250"},
		{"fixture compact", fixtures.Compact, "", ""},
	}
	for _, lang := range []struct {
		l   builder.Language
		ext string
	}{{builder.Language("c"), "c"}, {builder.Language("wat"), "wat"}} {
		for _, ex := range []string{"blink", "sensor-telemetry", "config-driven"} {
			src, err := os.ReadFile(filepath.Join("..", "..", "examples", lang.ext, ex+"."+lang.ext))
			if err != nil {
				t.Fatal(err)
			}
			res, err := builder.Build(ctx, builder.Request{Language: lang.l, Source: src})
			if err != nil {
				t.Fatalf("build examples/%s/%s: %v", lang.ext, ex, err)
			}
			mods = append(mods, mod{fmt.Sprintf("%s %s", lang.ext, ex), res.Module, "period_ms", "250"})
		}
	}
	for _, m := range mods {
		t.Run(m.name, func(t *testing.T) {
			gt, gd := runGo(t, host, m.bin, m.cfgKey, m.cfgVal, 12)
			ct, cd := runC(t, m.bin, m.cfgKey, m.cfgVal, 12)
			if fmt.Sprint(gd) != fmt.Sprint(cd) {
				t.Errorf("loop delays: wazero %v, C %v", gd, cd)
			}
			if gt != ct {
				t.Errorf("trace differs:\nwazero:\n%s\nC:\n%s", gt, ct)
			}
			if gt == "" && len(gd) == 0 {
				t.Errorf("the module did nothing observable: the comparison proves nothing")
			}
		})
	}
}
