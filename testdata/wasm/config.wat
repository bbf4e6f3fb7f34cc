;; config: logs the value of configuration key "greeting" (at most 32 bytes), drives
;; GPIO 2 high when key "missing" is absent, and exits after its first loop.
(module
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))
  (import "wasmbed" "config_get" (func $config_get (param i32 i32 i32 i32) (result i32)))
  (import "wasmbed" "gpio_write" (func $gpio_write (param i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "greeting")
  (data (i32.const 16) "missing")
  (func (export "setup")
    (local $n i32)
    (local.set $n (call $config_get (i32.const 0) (i32.const 8) (i32.const 64) (i32.const 32)))
    (if (i32.gt_s (local.get $n) (i32.const 32)) (then (local.set $n (i32.const 32))))
    (if (i32.ge_s (local.get $n) (i32.const 0))
      (then (call $log (i32.const 1) (i32.const 64) (local.get $n))))
    (if (i32.eq (call $config_get (i32.const 16) (i32.const 7) (i32.const 64) (i32.const 32)) (i32.const -1))
      (then (drop (call $gpio_write (i32.const 2) (i32.const 1))))))
  (func (export "loop") (result i32)
    (i32.const -1)))
