;; spin: loop never returns; the host must stop it with its run budget.
(module
  (func (export "loop") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
