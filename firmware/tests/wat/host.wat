;; Host imports: a C callback that reads the instance's memory, and a mutable global.
(module
  (import "env" "sum_bytes" (func $sum (param i32 i32) (result i32)))
  (import "env" "counter" (global $counter (mut i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\01\02\03\04\05")
  (func (export "run") (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (call $sum (i32.const 16) (i32.const 5))))
