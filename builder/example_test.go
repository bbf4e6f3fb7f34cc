package builder_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/wasmbed/wasmbed/builder"
)

// A build that succeeds returns the module, its digest and the toolchain used.
func ExampleBuild() {
	src := `(module
  (import "wasmbed" "led_set" (func $led_set (param i32 i32) (result i32)))
  (func (export "loop") (result i32)
    (drop (call $led_set (i32.const 0) (i32.const 1)))
    (i32.const 500)))
`
	res, err := builder.Build(context.Background(), builder.Request{Language: builder.WAT, Source: []byte(src)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Size, res.Digest[:7])
	// Output: 72 sha256:
}

// A mistake in the source is a *CompileError whose diagnostics name file and
// line; callers report it on the Application (build.failed) instead of retrying.
// Anything that is not a user error (see IsUserError) is the builder's problem.
func ExampleCompileError() {
	src := "#include \"wasmbed.h\"\n\nWASMBED_EXPORT(loop) int32_t loop(void) {\n    return 500\n}\n"
	_, err := builder.Build(context.Background(), builder.Request{Language: builder.C, Source: []byte(src)})

	var ce *builder.CompileError
	var te *builder.ToolchainError
	switch {
	case errors.As(err, &ce):
		for _, d := range ce.Errors() {
			fmt.Printf("%s line %d: %s\n", d.File, d.Line, d.Message)
		}
		fmt.Println(err)
	case errors.As(err, &te):
		fmt.Println("builder broken, retry later:", err)
	}
	// Output:
	// main.c line 4: expected ';' after return statement
	// main.c:4:15: error: expected ';' after return statement
}
