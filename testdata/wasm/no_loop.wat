;; no_loop: exports setup with the wrong type and no loop.
(module
  (func (export "setup") (result i32) (i32.const 0)))
