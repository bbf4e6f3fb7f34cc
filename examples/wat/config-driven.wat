;; config-driven: blinks LED 0 at the rate set by the Application's config key
;; period_ms (default 500 ms when it is missing or not a positive number).
(module
  (import "wasmbed" "config_get" (func $config_get (param i32 i32 i32 i32) (result i32)))
  (import "wasmbed" "led_set" (func $led_set (param i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "period_ms")   ;; 9 bytes at 0; the value is copied to 16..31
  (global $period (mut i32) (i32.const 500))
  (global $on (mut i32) (i32.const 0))

  (func (export "setup")
    (local $n i32) (local $i i32) (local $c i32) (local $v i32)
    (local.set $n (call $config_get (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 16)))
    (if (i32.or (i32.le_s (local.get $n) (i32.const 0)) (i32.gt_s (local.get $n) (i32.const 16)))
      (then (return)))
    ;; parse decimal digits; any other byte makes the value invalid
    (block $done
      (loop $digits
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.sub (i32.load8_u offset=16 (local.get $i)) (i32.const 48)))
        (if (i32.gt_u (local.get $c) (i32.const 9)) (then (return)))
        (local.set $v (i32.add (i32.mul (local.get $v) (i32.const 10)) (local.get $c)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digits)))
    (if (i32.gt_s (local.get $v) (i32.const 0))
      (then (global.set $period (local.get $v)))))

  (func (export "loop") (result i32)
    (global.set $on (i32.eqz (global.get $on)))
    (drop (call $led_set (i32.const 0) (global.get $on)))
    (global.get $period)))
