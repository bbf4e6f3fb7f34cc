;; An application that floods: each loop call logs 100 lines of 64 bytes and publishes 20
;; records, then asks to be called again at once. The rate limits drop most of it, the
;; drops are reported, and the device keeps its session (docs/abi.md, "Limits").
(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (import "wasmbed" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "flood flood flood flood flood flood flood flood flood flood floo")
  (data (i32.const 64) "flood")
  ;; ERR_BUSY answers of the last call, for the tests to read
  (global $busy (export "busy") (mut i32) (i32.const 0))
  (func (export "loop") (result i32)
    (local $i i32)
    (global.set $busy (i32.const 0))
    (local.set $i (i32.const 100))
    (loop $l
      (call $log (i32.const 1) (i32.const 0) (i32.const 64))
      (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
    (local.set $i (i32.const 20))
    (loop $p
      (if (i32.eq (call $publish (i32.const 64) (i32.const 5) (i32.const 0) (i32.const 8)) (i32.const -3))
        (then (global.set $busy (i32.add (global.get $busy) (i32.const 1)))))
      (br_if $p (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
    (i32.const 0)))
