;; big_memory: declares a 64-page (4 MiB) minimum memory, more than any board has.
(module
  (memory 64)
  (func (export "loop") (result i32) (i32.const -1)))
