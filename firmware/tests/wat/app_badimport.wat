;; Imports led_set with the wrong type: unlinkable.
(module
  (import "wasmbed" "led_set" (func (param i32) (result i32)))
  (func (export "loop") (result i32) (i32.const 0)))
