// Package builder compiles a Wasmbed application's single source file (C,
// AssemblyScript, WAT or Rust) into a small WebAssembly 2.0 module (no SIMD) for
// microcontrollers, with the real toolchains (clang-19 and wasm-ld-19, wabt,
// the pinned AssemblyScript compiler, Debian's rustc 1.96), optionally shrunk with
// binaryen's wasm-opt.
//
// Every compiler step runs in a bubblewrap sandbox: its own user, mount, PID,
// network, IPC, UTS and cgroup namespaces, as uid 65534 without capabilities,
// with no-new-privileges and a seccomp filter. It sees its own toolchain
// read-only (the program, its shared libraries, its headers or standard
// library), the build directory read-write, a private /tmp, a fresh /proc and a
// minimal /dev, and nothing else of the host. When the sandbox cannot be set
// up, the build fails: no compiler ever runs outside it. Each step also runs
// under a deadline that kills it, with CPU-time, memory and file-size limits
// (prlimit) and a fixed environment. The output is checked with wazero:
// WebAssembly 1.0 plus sign-extension and mutable globals only, imports only
// from module "wasmbed", and a `loop` export.
//
// Errors tell the caller whose fault a failure is: a *CompileError or a
// *LimitError means the application is wrong (report it on the Application
// with file:line), a *ToolchainError or any other error means the builder is
// broken or overloaded (retry, alert). IsUserError draws that line.
//
// The application ABI the SDKs in sdk/ implement is docs/abi.md.
package builder
