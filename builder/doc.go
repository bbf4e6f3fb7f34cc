// Package builder compiles a Wasmbed application's single source file (C,
// AssemblyScript, WAT or Rust) into a small WebAssembly 1.0 module for
// microcontrollers, with the real toolchains (clang-14 and wasm-ld-14, wabt,
// the pinned AssemblyScript compiler, Debian's rustc), optionally shrunk with
// binaryen's wasm-opt.
//
// Every build runs in a fresh temporary directory, under a deadline that kills
// the compiler's whole process group, with CPU-time, memory and file-size
// limits (prlimit), a scrubbed environment and, where the kernel allows it, a
// private network namespace. The output is checked with wazero: WebAssembly 1.0
// plus sign-extension and mutable globals only, imports only from module
// "wasmbed", and a `loop` export.
//
// Errors tell the caller whose fault a failure is: a *CompileError or a
// *LimitError means the application is wrong (report it on the Application
// with file:line), a *ToolchainError or any other error means the builder is
// broken or overloaded (retry, alert). IsUserError draws that line.
//
// The application ABI the SDKs in sdk/ implement is docs/abi.md.
package builder
