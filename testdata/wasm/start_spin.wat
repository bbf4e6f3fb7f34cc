;; start_spin: the start function never returns; instantiation must be stopped.
(module
  (func $start (loop $forever (br $forever)))
  (start $start)
  (func (export "loop") (result i32) (i32.const 100)))
