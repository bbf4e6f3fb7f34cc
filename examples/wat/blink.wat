;; blink: toggles LED 0 every 500 ms. loop returns the delay until the host calls it
;; again, so the application never sleeps inside the host.
(module
  (import "wasmbed" "led_set" (func $led_set (param i32 i32) (result i32)))
  (import "wasmbed" "log" (func $log (param i32 i32 i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "blink: started")
  (global $on (mut i32) (i32.const 0))

  (func (export "setup")
    (call $log (i32.const 1) (i32.const 0) (i32.const 14)))

  (func (export "loop") (result i32)
    (global.set $on (i32.eqz (global.get $on)))
    (drop (call $led_set (i32.const 0) (global.get $on)))
    (i32.const 500)))
