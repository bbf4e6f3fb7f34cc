;; Calls log and publish without a memory: the host must trap, as a device does.
(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (func (export "loop") (result i32)
    (call $log (i32.const 1) (i32.const 0) (i32.const 4))
    (i32.const -1)))
