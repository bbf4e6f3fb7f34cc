;; sensor-telemetry: reads the temperature sensor once a second and publishes it, in
;; milli-degrees Celsius as decimal text, on topic "temperature".
(module
  (import "wasmbed" "sensor_read" (func $sensor_read (param i32) (result i32)))
  (import "wasmbed" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "temperature")                          ;; 11 bytes at 0
  (data (i32.const 16) "no temperature sensor on this board") ;; 35 bytes at 16
  ;; the decimal text is built backwards in 64..76

  ;; $itoa writes v in decimal so that it ends at byte 76 and returns its start.
  (func $itoa (param $v i32) (result i32)
    (local $p i32) (local $u i32) (local $neg i32)
    (local.set $p (i32.const 76))
    (local.set $neg (i32.lt_s (local.get $v) (i32.const 0)))
    (local.set $u (select (i32.sub (i32.const 0) (local.get $v)) (local.get $v) (local.get $neg)))
    (loop $digits
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $u) (i32.const 10))))
      (local.set $u (i32.div_u (local.get $u) (i32.const 10)))
      (br_if $digits (local.get $u)))
    (if (local.get $neg)
      (then
        (local.set $p (i32.sub (local.get $p) (i32.const 1)))
        (i32.store8 (local.get $p) (i32.const 45))))
    (local.get $p))

  (func (export "loop") (result i32)
    (local $t i32) (local $start i32)
    (local.set $t (call $sensor_read (i32.const 0)))
    (if (i32.eq (local.get $t) (i32.const -2147483648))
      (then
        (call $log (i32.const 2) (i32.const 16) (i32.const 35))
        (return (i32.const 10000))))
    (local.set $start (call $itoa (local.get $t)))
    (drop (call $publish (i32.const 0) (i32.const 11)
                         (local.get $start) (i32.sub (i32.const 76) (local.get $start))))
    (i32.const 1000)))
