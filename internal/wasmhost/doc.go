// Package wasmhost runs Wasmbed applications on wazero, implementing the application ABI
// of docs/abi.md (version 1): the host module "wasmbed", the setup/loop life cycle and
// the limits on memory and running time. The validator's smoke test and the virtual
// devices both use it, so that they agree with each other and with the firmware.
//
// # Run budget
//
// The firmware bounds each call into an application with instruction fuel. wazero has
// no fuel, so this package bounds each call (the start function, setup, one loop) by
// wall-clock time instead: the call runs under a context that is cancelled when its
// budget (HostConfig.WithCallBudget, default DefaultCallBudget) runs out, and the runtime
// is created with WithCloseOnContextDone(true) so that wazero interrupts the module even
// inside a tight loop. Time the application spends blocked in sleep_ms does not count.
// Running out of budget fails the application with the reason "fuel exhausted", as on
// a device. A time budget is an approximation: it is looser than fuel on a fast host and
// can be stricter on a loaded one, so the default is generous.
//
// # Memory
//
// The runtime's memory is capped with WithMemoryLimitPages: a module whose minimum
// memory is larger does not compile, and memory.grow beyond the cap returns -1.
//
// # Usage
//
//	host, err := wasmhost.NewHost(ctx, wasmhost.NewHostConfig())
//	mod, err := host.Compile(ctx, wasmBytes) // cached by sha256
//	app, err := host.Instantiate(ctx, mod, wasmhost.NewSimBoard(wasmhost.SimBoardConfig{}))
//	status := app.Run(ctx) // setup, then loop until it exits, fails or ctx is done
//	app.Close(ctx)
package wasmhost
