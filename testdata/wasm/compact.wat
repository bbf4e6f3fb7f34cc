;; compact: declares one page but only uses its first 4 KiB (data and a stack below
;; 4096), so it runs on a board whose application budget is smaller than a page.
(module
  (import "wasmbed" "led_set" (func $led_set (param i32 i32) (result i32)))
  (memory 1)
  (global $sp (mut i32) (i32.const 4096))
  (data (i32.const 1024) "wasmbed")
  (func (export "loop") (result i32)
    (drop (call $led_set (i32.const 0) (i32.const 1)))
    (i32.const 500)))
