;; An application that never returns from loop: must end with "fuel exhausted".
(module
  (import "wasmbed" "yield" (func $yield))
  (func (export "loop") (result i32) (loop $l (call $yield) (br $l)) (i32.const 0)))
