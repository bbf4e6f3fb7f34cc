// Package wasmhost runs Wasmbed applications on wazero, implementing the application ABI
// of docs/abi.md (version 1): the host module "wasmbed", the setup/loop life cycle and
// the limits on memory and running time. The validator's smoke test and the virtual
// devices both use it, so that they agree with each other and with the firmware.
//
// # Run budgets
//
// Each call (the start function, setup, one loop) runs under two budgets, as on a device
// (docs/abi.md, "Limits"):
//
//   - Compute, the stand-in for a device's instruction fuel, which wazero cannot count:
//     the call runs under a context that is cancelled when its budget
//     (HostConfig.WithCallBudget, default DefaultCallBudget) runs out, and the runtime is
//     created with WithCloseOnContextDone(true) so that wazero interrupts the module even
//     inside a tight loop. Time blocked in sleep_ms does not count. Running out fails the
//     application with "fuel exhausted", as on a device. A compute budget is an
//     approximation: looser than fuel on a fast host, stricter on a loaded one, so the
//     default is generous.
//   - Time, the devices' own wall-clock budget (HostConfig.WithTimeBudget, default
//     DefaultTimeBudget, 2 s), on the board's Clock, sleep_ms and host calls included:
//     checked at every host call and when the call returns, a sleep that would end past
//     it failing at once, as the firmware does. Running out fails the application with
//     "time budget exceeded" (ErrTimeBudget). With a SimClock it costs no real time.
//
// log and publish are rate-limited by token buckets per application with the devices'
// numbers (api/abi), and what they drop is reported as the application's warning lines.
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
