;; An application whose loop sleeps 100 ms at a time and never returns: the call must end
;; with "time budget exceeded" (docs/abi.md, "Limits") while the host serves its session.
(module
  (import "wasmbed" "sleep_ms" (func $sleep (param i32)))
  (func (export "loop") (result i32) (loop $l (call $sleep (i32.const 100)) (br $l)) (i32.const 0)))
