package validate_test

import (
	"errors"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/attestation"
	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"

	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/functions/validate"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

func uleb(v uint32) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func section(id byte, payload []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(payload)))...), payload...)
}

// hugeData builds a valid module with an n-byte data segment and 6 pages of memory.
func hugeData(n int) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, []byte{1, 0x60, 0, 1, 0x7f})...)                           // type () -> i32
	m = append(m, section(3, []byte{1, 0})...)                                          // one function
	m = append(m, section(5, []byte{1, 0, 6})...)                                       // memory min 6
	m = append(m, section(7, append([]byte{1, 4}, append([]byte("loop"), 0, 0)...))...) // export loop
	m = append(m, section(10, []byte{1, 4, 0, 0x41, 0x7f, 0x0b})...)                    // body: i32.const -1
	seg := append([]byte{1, 0, 0x41, 0, 0x0b}, uleb(uint32(n))...)
	seg = append(seg, bytes.Repeat([]byte{0x2a}, n)...)
	return append(m, section(11, seg)...)
}

// withCustomSection returns m plus a custom section, a different module with the same code.
func withCustomSection(m []byte, i int) []byte {
	name := []byte("n")
	payload := append(append(uleb(uint32(len(name))), name...), binary.LittleEndian.AppendUint32(nil, uint32(i))...)
	return append(append([]byte(nil), m...), section(0, payload)...)
}

func newFunction(t testing.TB) (*validate.Function, artifacts.Store) {
	t.Helper()
	f, store, _ := newFunctionWithKey(t)
	return f, store
}

// newFunctionWithKey is newFunction, also returning the validator's attestation key.
func newFunctionWithKey(t testing.TB) (*validate.Function, artifacts.Store, *pki.SigningKey) {
	t.Helper()
	store, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	f, err := validate.New(validate.Config{Store: store, Attester: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	return f, store, key
}

var app = events.AppRef{Namespace: "default", Name: "blink", Generation: 3}

func builtEvent(t testing.TB, store artifacts.Store, module []byte, boards ...string) cloudevents.Event {
	t.Helper()
	d, err := store.Put(context.Background(), module)
	if err != nil {
		t.Fatal(err)
	}
	e, err := events.New(events.ModuleBuilt, events.SourceCompile, app.Subject(),
		&events.ModuleBuiltData{Application: app, Digest: d, Size: int64(len(module)), Boards: boards})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestVerdicts(t *testing.T) {
	cases := []struct {
		name   string
		module []byte
		boards []string
		ok     bool
		reason string // substring of a reason when rejected
	}{
		{"blink on every board", fixtures.Blink, []string{"stm32f4-discovery", "nrf52840-nano33ble", "mps2-an386", "virtual"}, true, ""},
		{"sensor telemetry", fixtures.Sensor, []string{"virtual"}, true, ""},
		{"config driven", fixtures.Config, []string{"stm32f4-discovery"}, true, ""},
		{"compact memory on a 32 KiB board", fixtures.Compact, []string{"arduino-uno-r4"}, true, ""},
		{"infinite loop in loop", fixtures.Spin, []string{"virtual"}, false, "fuel exhausted"},
		{"infinite loop in start", fixtures.StartSpin, []string{"virtual"}, false, "instantiating"},
		{"3 s of sleep in one loop call", fixtures.Sleeper, []string{"virtual"}, false, "time budget exceeded"},
		{"trap in setup", fixtures.TrapSetup, []string{"virtual"}, false, "traps in setup"},
		{"trap in start", fixtures.TrapStart, []string{"virtual"}, false, "instantiating"},
		{"memory.grow bomb", fixtures.GrowBomb, []string{"virtual"}, true, ""}, // grow returns -1: harmless
		{"declares 4 MiB of memory", fixtures.BigMemory, []string{"stm32f4-discovery"}, false, "linear memory"},
		{"huge data segment", hugeData(300 * 1024), []string{"stm32f4-discovery"}, false, "accepts modules up to 16 KiB"},
		{"unknown import", fixtures.BadImport, []string{"virtual"}, false, "not a wasmbed host function"},
		{"missing loop export", fixtures.NoLoop, []string{"virtual"}, false, "export loop: missing"},
		{"SIMD", fixtures.SIMD, []string{"virtual"}, false, "SIMD"},
		{"oversize for a small board", hugeData(80 * 1024), []string{"arduino-uno-r4"}, false, "accepts modules up to 3 KiB"},
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), []string{"virtual"}, false, "not a valid WebAssembly module"},
		{"unknown board", fixtures.Blink, []string{"esp32"}, false, `unknown board "esp32"`},
		// A 2^30-entry table wrapped the firmware's 32-bit size arithmetic (issue 13); the
		// boards refuse tables over WB_MAX_TABLE at load, so validation refuses them too.
		{"a 2^30-element table", withTable(1 << 30), []string{"mps2-an386"}, false, "table size exceeds the device limit"},
		{"a table over the STM32's limit", withTable(513), []string{"stm32f4-discovery"}, false, "the board allows 512"},
		{"the same table on the MPS2", withTable(513), []string{"mps2-an386"}, true, ""},
	}
	f, store := newFunction(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := f.Handle(context.Background(), builtEvent(t, store, tc.module, tc.boards...))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if tc.ok {
				d, err := events.DecodeAs[*events.ModuleValidatedData](*reply, events.ModuleValidated)
				if err != nil {
					t.Fatalf("want module.validated, got %s: %s", reply.Type(), reply.Data())
				}
				if len(d.Report.Boards) != len(tc.boards) || d.Report.SmokeTest == "" {
					t.Errorf("report = %+v", d.Report)
				}
				return
			}
			d, err := events.DecodeAs[*events.ModuleRejectedData](*reply, events.ModuleRejected)
			if err != nil {
				t.Fatalf("want module.rejected, got %s: %s", reply.Type(), reply.Data())
			}
			if !strings.Contains(strings.Join(d.Report.Reasons, "\n"), tc.reason) {
				t.Errorf("reasons %q do not mention %q", d.Report.Reasons, tc.reason)
			}
		})
	}
}

func TestCompactFitIsReported(t *testing.T) {
	f, _ := newFunction(t)
	r, err := f.Validate(context.Background(), fixtures.Compact, []string{"arduino-uno-r4", "mps2-an386"})
	if err != nil || len(r.Reasons) != 0 {
		t.Fatalf("Validate = %+v, %v", r, err)
	}
	if r.Boards[0].MemoryBytes != 4096 || !strings.Contains(r.Boards[0].Message, "compact 4 KiB") {
		t.Errorf("arduino-uno-r4 fit = %+v", r.Boards[0])
	}
	if r.Boards[1].MemoryBytes != 65536 || r.Boards[1].Message != "" {
		t.Errorf("mps2-an386 fit = %+v", r.Boards[1])
	}
	if strings.Join(r.Imports, ",") != "wasmbed.led_set" || !strings.Contains(strings.Join(r.Exports, ","), "loop") {
		t.Errorf("imports %v exports %v", r.Imports, r.Exports)
	}
}

func TestBadEvents(t *testing.T) {
	f, store := newFunction(t)
	unknown := builtEvent(t, store, fixtures.Blink, "virtual")
	_ = unknown.SetData(cloudevents.ApplicationJSON, &events.ModuleBuiltData{Application: app, Digest: digest.Of([]byte("never stored")), Size: 3, Boards: []string{"virtual"}})
	wrongType := builtEvent(t, store, fixtures.Blink, "virtual")
	wrongType.SetType(string(events.BuildRequested))
	cases := []struct {
		name string
		e    cloudevents.Event
		code int
		msg  string
	}{
		{"unknown digest", unknown, 422, "not in the artifact store"},
		{"wrong type", wrongType, 400, "accepts dev.wasmbed.module.built"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Handle(context.Background(), tc.e)
			if err == nil || eventserver.StatusOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v (status %d), want %d %q", err, eventserver.StatusOf(err), tc.code, tc.msg)
			}
		})
	}
}

func TestOverHTTP(t *testing.T) {
	f, store := newFunction(t)
	env := testenv.Start(t)
	auth, policy := env.Receiver(t, "validate", events.ModuleBuilt)
	srv := httptest.NewServer(eventserver.NewHTTPHandler("validate", f, eventserver.Options{Auth: policy}))
	defer srv.Close()
	e := builtEvent(t, store, fixtures.Blink, "virtual")

	structured, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	binaryReq := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(e.Data()))
		for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": e.ID(), "ce-type": e.Type(), "ce-source": e.Source(), "ce-subject": e.Subject(), "content-type": "application/json", "authorization": auth} {
			r.Header.Set(k, v)
		}
		return r
	}
	structuredReq := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(structured))
		r.Header.Set("content-type", "application/cloudevents+json")
		r.Header.Set("authorization", auth)
		return r
	}
	for name, req := range map[string]func() *http.Request{"binary": binaryReq, "structured": structuredReq} {
		t.Run(name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(req())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("ce-type") != string(events.ModuleValidated) {
				t.Fatalf("status %d, ce-type %q", resp.StatusCode, resp.Header.Get("ce-type"))
			}
		})
	}
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
}

func FuzzInspect(f *testing.F) {
	for _, m := range [][]byte{fixtures.Blink, fixtures.Compact, fixtures.BigMemory, fixtures.Probe, hugeData(16)} {
		f.Add(m)
	}
	fn, _ := newFunction(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		// Validate must never panic and must always report a verdict for any bytes.
		r, err := fn.Validate(context.Background(), b, []string{"virtual"})
		if err != nil {
			t.Fatalf("validator error on untrusted bytes: %v", err)
		}
		_ = r
	})
}

// BenchmarkValidate measures a full validation of a new module (compile, checks, smoke
// test) by size; every iteration is a different module so nothing is cached.
func BenchmarkValidate(b *testing.B) {
	// The board each size is validated for: one whose module and memory budgets admit it
	// (the module's data fills its memory), so that the benchmark measures a validation
	// that passes. The STM32F4 admits 16 KiB modules but backs 12 KiB of memory.
	boards := map[int]string{1024: "stm32f4-discovery", 4096: "stm32f4-discovery", 16384: "mps2-an386", 65536: "virtual"}
	for _, size := range []int{1024, 4096, 16384, 65536} {
		b.Run(fmt.Sprintf("%dKiB", size/1024), func(b *testing.B) {
			f, _ := newFunction(b)
			base := hugeData(size - 40)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := f.Validate(context.Background(), withCustomSection(base, i), []string{boards[size]})
				if err != nil || len(r.Reasons) != 0 {
					b.Fatalf("%v %v", r.Reasons, err)
				}
			}
		})
	}
}

// TestOnlyPassingModulesAreAttested: a module that passes gets the validator's signed
// attestation beside it in the store; one that is rejected gets none.
func TestOnlyPassingModulesAreAttested(t *testing.T) {
	f, store, key := newFunctionWithKey(t)
	if _, err := validate.New(validate.Config{Store: store}); err == nil {
		t.Fatal("a validator without a key to attest with was accepted")
	}
	for _, tc := range []struct {
		name   string
		module []byte
		passes bool
	}{
		{"blink passes", fixtures.Blink, true},
		{"bad imports are rejected", fixtures.BadImport, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := builtEvent(t, store, tc.module, "virtual")
			if _, err := f.Handle(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			d := digest.Of(tc.module)
			env, err := store.Attestation(context.Background(), d)
			if !tc.passes {
				if !errors.Is(err, artifacts.ErrNotFound) {
					t.Fatalf("a rejected module has an attestation: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, err := attestation.Verify(env, key.Public(), d, abi.Version)
			if err != nil || len(v.Boards) != 1 || v.Boards[0] != "virtual" {
				t.Fatalf("attestation = %+v, %v", v, err)
			}
		})
	}
}

// withTable is a module with a loop export and a funcref table of min elements.
func withTable(min uint32) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, []byte{1, 0x60, 0, 1, 0x7f})...)              // type () -> i32
	m = append(m, section(3, []byte{1, 0})...)                             // one function
	m = append(m, section(4, append([]byte{1, 0x70, 0}, uleb(min)...))...) // table funcref min
	m = append(m, section(7, []byte{1, 4, 'l', 'o', 'o', 'p', 0, 0})...)   // export loop
	return append(m, section(10, []byte{1, 4, 0, 0x41, 100, 0x0b})...)     // i32.const 100
}

// A board reporting an older ABI refuses a module that uses a feature outside it, and the
// reason names the feature; the current ABI admits it.
func TestABIFitNamesTheFeature(t *testing.T) {
	ctx := context.Background()
	// (type (func (result i32 i32))): multi-value, new in ABI 2
	multi := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 6, 1, 0x60, 0, 2, 0x7f, 0x7f}
	tests := []struct {
		name    string
		module  []byte
		version int
		want    string // "" admits
	}{
		{"multi-value on ABI 2", multi, abi.Version, ""},
		{"multi-value on ABI 1", multi, 1, "uses multiple return values, which the board's firmware (ABI 1) cannot run"},
		{"unknown ABI", multi, 7, "its firmware implements ABI 7, which this validator does not know"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validate.ABIFit(ctx, tt.module, tt.version); got != tt.want {
				t.Fatalf("ABIFit = %q, want %q", got, tt.want)
			}
		})
	}
}
