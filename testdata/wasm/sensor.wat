;; sensor: reads the temperature sensor and publishes it as a 4-byte little-endian
;; record on topic "temp" every 100 ms; logs a warning when a publish is refused.
(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (import "wasmbed" "sensor_read" (func $sensor_read (param i32) (result i32)))
  (import "wasmbed" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "temp")
  (data (i32.const 16) "publish refused")
  (data (i32.const 32) "no sensor")
  (func (export "loop") (result i32)
    (local $v i32)
    (local.set $v (call $sensor_read (i32.const 0)))
    (if (i32.eq (local.get $v) (i32.const 0x80000000))
      (then
        (call $log (i32.const 2) (i32.const 32) (i32.const 9))
        (return (i32.const 1000))))
    (i32.store (i32.const 64) (local.get $v))
    (if (call $publish (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 4))
      (then (call $log (i32.const 2) (i32.const 16) (i32.const 15))))
    (i32.const 100)))
