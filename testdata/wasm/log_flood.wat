;; log_flood: each loop call logs "line" 30 times, then asks for the next call in 100 ms:
;; the log bucket (20 at once, one more every 100 ms) drops the excess and reports it.
(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (memory 1)
  (data (i32.const 0) "line")
  (func (export "loop") (result i32)
    (local $i i32)
    (local.set $i (i32.const 30))
    (loop $l
      (call $log (i32.const 1) (i32.const 0) (i32.const 4))
      (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
    (i32.const 100)))
