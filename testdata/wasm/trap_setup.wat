;; trap_setup: setup reaches unreachable, so the application fails before its first loop.
(module
  (func (export "setup") unreachable)
  (func (export "loop") (result i32) (i32.const 0)))
