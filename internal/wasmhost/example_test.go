package wasmhost_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wasmbed/wasmbed/internal/wasmhost"
	fixtures "github.com/wasmbed/wasmbed/testdata/wasm"
)

// Run an application on a simulated board: the config module logs its "greeting" in
// setup, then exits from its first loop.
func Example() {
	ctx := context.Background()
	host, err := wasmhost.NewHost(ctx, wasmhost.NewHostConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close(ctx)

	mod, err := host.Compile(ctx, fixtures.Config)
	if err != nil {
		fmt.Println(err)
		return
	}
	board := wasmhost.NewSimBoard(wasmhost.SimBoardConfig{
		Config: map[string]string{"greeting": "hello, board"},
		OnLog:  func(r wasmhost.LogRecord) { fmt.Printf("[%s] %s\n", r.Level, r.Message) },
	})
	app, err := host.Instantiate(ctx, mod, board)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.Close(ctx)

	fmt.Printf("%+v\n", app.Run(ctx))
	// Output:
	// [info] hello, board
	// {State:Exited Reason: Loops:1}
}

// A module that never returns from loop is failed by the run budget, with the reason a
// device reports when it runs out of fuel.
func ExampleTrapError() {
	ctx := context.Background()
	host, _ := wasmhost.NewHost(ctx, wasmhost.NewHostConfig().WithCallBudget(10*time.Millisecond))
	defer host.Close(ctx)
	mod, _ := host.Compile(ctx, fixtures.Spin)
	app, _ := host.Instantiate(ctx, mod, wasmhost.NewSimBoard(wasmhost.SimBoardConfig{}))
	defer app.Close(ctx)

	_, _, err := app.Loop(ctx)
	fmt.Println(err)
	// Output:
	// loop: fuel exhausted
}
