;; A Wasmbed ABI v1 application that runs until stopped: logs "tick" on every loop,
;; calls loop again after 1 s.
(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (memory 1)
  (data (i32.const 0) "tick")
  (func (export "loop") (result i32)
    (call $log (i32.const 1) (i32.const 0) (i32.const 4))
    (i32.const 1000)))
