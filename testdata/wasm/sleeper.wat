;; sleeper: each loop call sleeps 1 s three times, 3 s in all: over the 2 s time budget
;; of a call (docs/abi.md, "Limits") although it computes almost nothing.
(module
  (import "wasmbed" "sleep_ms" (func $sleep (param i32)))
  (func (export "loop") (result i32)
    (call $sleep (i32.const 1000))
    (call $sleep (i32.const 1000))
    (call $sleep (i32.const 1000))
    (i32.const 0)))
