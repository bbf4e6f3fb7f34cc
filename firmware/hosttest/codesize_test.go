package hosttest

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/builder"
)

// codeSection returns the byte size of a module's code section (id 10).
func codeSection(bin []byte) (int, error) {
	p := bin[8:]
	for len(p) > 0 {
		id := p[0]
		size, n := binary.Uvarint(p[1:])
		if n <= 0 || uint64(len(p)-1-n) < size {
			return 0, fmt.Errorf("malformed section header")
		}
		if id == 10 {
			return int(size), nil
		}
		p = p[1+n+int(size):]
	}
	return 0, fmt.Errorf("no code section")
}

// The interpreter translates every function at load time and keeps the result in the
// device's arena: the translation of the example applications, in every language the
// builder supports, must stay within a small multiple of their code section, the budget
// the board arenas (firmware/boards/*/board.mk) are sized for.
func TestTranslatedCodeSize(t *testing.T) {
	const maxRatio = 4.0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	langs := []struct{ lang, ext string }{{"c", "c"}, {"wat", "wat"}, {"rust", "rs"}, {"assemblyscript", "ts"}}
	for _, l := range langs {
		for _, ex := range []string{"blink", "sensor-telemetry", "config-driven"} {
			t.Run(l.lang+"/"+ex, func(t *testing.T) {
				src, err := os.ReadFile(filepath.Join("..", "..", "examples", l.lang, ex+"."+l.ext))
				if err != nil {
					t.Fatal(err)
				}
				res, err := builder.Build(ctx, builder.Request{Language: builder.Language(l.lang), Source: src})
				if err != nil {
					t.Fatalf("build examples/%s/%s: %v", l.lang, ex, err)
				}
				code, err := codeSection(res.Module)
				if err != nil {
					t.Fatal(err)
				}
				in, err := Load(res.Module, false)
				defer in.Close()
				if err != nil {
					t.Fatalf("load: %v", err)
				}
				got := in.CodeBytes()
				ratio := float64(got) / float64(code)
				t.Logf("module %d B, code section %d B, translated %d B (%.1fx)", len(res.Module), code, got, ratio)
				if got == 0 || ratio > maxRatio {
					t.Errorf("translated code is %d B for a %d B code section (%.1fx, budget %.0fx)", got, code, ratio, maxRatio)
				}
			})
		}
	}
}
