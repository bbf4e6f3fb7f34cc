;; bad_import: imports a function that is not in the ABI and log with the wrong type.
(module
  (import "wasmbed" "reboot" (func (param i32)))
  (import "wasmbed" "log" (func (param i32 i32) (result i32)))
  (import "env" "abort" (func))
  (func (export "loop") (result i32) (i32.const 0)))
