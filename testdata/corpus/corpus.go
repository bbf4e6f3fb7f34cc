// Package corpus holds real programs built by today's compilers (clang 19, rustc 1.96)
// with each compiler's default wasm32 features and for WebAssembly 1.0: the committed
// .wasm bytes, their sources (src/) and the exact commands (BUILD.txt, written by
// hack/corpus.sh). Every engine must run them alike, and Expected says what each call
// of a program's loop must log, computed here in Go as an independent oracle.
package corpus

import (
	"crypto/sha256"
	"embed"
	"fmt"
	"hash/crc32"
	"math"
	"path"
	"slices"
	"strings"
)

//go:embed *.wasm
var files embed.FS

// Module is one corpus module: Program (crc32, sort, search, sha256, matrix) built as
// Variant ("default": the compiler's default features; "mvp": WebAssembly 1.0).
type Module struct {
	Program, Variant string
	Wasm             []byte
}

// Name is "<program>.<variant>".
func (m Module) Name() string { return m.Program + "." + m.Variant }

// Modules returns every module of the corpus, sorted by name.
func Modules() ([]Module, error) {
	entries, err := files.ReadDir(".")
	if err != nil {
		return nil, err
	}
	var out []Module
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".wasm")
		program, variant, ok := strings.Cut(name, ".")
		if !ok {
			return nil, fmt.Errorf("corpus: %s is not <program>.<variant>.wasm", e.Name())
		}
		b, err := files.ReadFile(path.Join(".", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Module{Program: program, Variant: variant, Wasm: b})
	}
	return out, nil
}

// Expected is the log line the call-th call (from 0) of program's loop writes.
func Expected(program string, call int) (string, error) {
	switch program {
	case "crc32":
		return crc32Line(call), nil
	case "sort":
		return sortLine(call), nil
	case "search":
		return searchLine(call), nil
	case "sha256":
		return fmt.Sprintf("sha256 %d %x", call, sha256.Sum256(fmt.Appendf(nil, "wasmbed corpus %d", call))), nil
	case "matrix":
		return matrixLine(call), nil
	}
	return "", fmt.Errorf("corpus: no program %q", program)
}

func crc32Line(call int) string {
	buf := make([]byte, 1024)
	for i := range 512 {
		buf[i] = byte('a' + call)
	}
	copy(buf[512:], buf[:512])
	buf[call*7] = 'z'
	return fmt.Sprintf("crc32 %d %08x", call, crc32.ChecksumIEEE(buf))
}

func sortLine(call int) string {
	a := make([]int32, 64)
	x := uint32(call) + 1
	for i := range a {
		x = x*1664525 + 1013904223
		a[i] = int32(x>>8) - 1<<23
	}
	slices.Sort(a)
	if call%2 == 1 {
		slices.Reverse(a)
	}
	var sum uint32
	for i, v := range a {
		sum += uint32(i+1) * uint32(v)
	}
	return fmt.Sprintf("sort %d %d %d %d", call, a[0], a[63], int32(sum))
}

func searchLine(call int) string {
	text := make([]byte, 2048)
	x := 7*uint32(call) + 3
	for i := range text {
		x = x*1103515245 + 12345
		text[i] = "abc"[(x>>16)%3]
	}
	const pat = "abcab"
	matches, first := 0, -1
	for i := 0; i+len(pat) <= len(text); i++ {
		if string(text[i:i+len(pat)]) == pat {
			if first < 0 {
				first = i
			}
			matches++
		}
	}
	runs := 0
	for i, c := range text {
		if c == 'a' && (i == 0 || text[i-1] != 'a') {
			runs++
		}
	}
	return fmt.Sprintf("search %d %d %d %d", call, matches, first, runs)
}

// saturate is Rust's `as i32` of a float: NaN is 0, out-of-range values clamp.
func saturate(f float32) int32 {
	switch {
	case f != f:
		return 0
	case f >= math.MaxInt32:
		return math.MaxInt32
	case f <= math.MinInt32:
		return math.MinInt32
	}
	return int32(f)
}

func matrixLine(call int) string {
	const n = 8
	entry := func(i, j int, salt uint32) float32 {
		v := (uint32(call)*31 ^ salt) + uint32(i*13+j*7)
		v %= 97
		f := float32(v) / 8
		return f - 5.5
	}
	var a, b, c [n][n]float32
	for i := range n {
		for j := range n {
			a[i][j] = entry(i, j, 0x55)
			b[i][j] = entry(j, i, 0xaa)
		}
	}
	for i := range n {
		for j := range n {
			var s float32
			for k := range n {
				p := float32(a[i][k] * b[k][j]) // rounded on its own, as WebAssembly does
				s = float32(s + p)
			}
			c[i][j] = s
		}
	}
	var trace float32
	for i := range n {
		trace = float32(trace + c[i][i])
	}
	corner := saturate(float32(c[0][n-1] * 1.0e9))
	return fmt.Sprintf("matrix %d %d %08x %d", call, saturate(trace), math.Float32bits(trace), corner)
}
