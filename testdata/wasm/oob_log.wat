;; oob_log: passes a (ptr, len) pair that runs past the end of memory to log.
(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (memory 1)
  (func (export "loop") (result i32)
    (call $log (i32.const 1) (i32.const 65530) (i32.const 100))
    (i32.const 0)))
