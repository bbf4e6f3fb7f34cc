;; trap_start: the WebAssembly start function traps, so instantiation fails.
(module
  (func $start unreachable)
  (start $start)
  (func (export "loop") (result i32) (i32.const 0)))
