;; grow_bomb: grows memory one page at a time until memory.grow refuses, then logs
;; "memory.grow refused" and exits.
(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "memory.grow refused")
  (func (export "loop") (result i32)
    (block $refused
      (loop $grow
        (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $grow)))
    (call $log (i32.const 2) (i32.const 0) (i32.const 19))
    (i32.const -1)))
