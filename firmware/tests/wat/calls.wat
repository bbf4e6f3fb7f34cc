;; Call chains for the native tier (make parity-m4): recursion through the table, and
;; a compiled function and an interpreted one (it has a call_indirect through a second
;; table, which the native tier leaves to the interpreter) calling each other. Both
;; engines must agree on results, traps and fuel, and compiled code must not use more
;; machine stack for a call through the table than for a direct call.
(module
  (type $ii (func (param i32) (result i32)))
  (table 2 funcref)
  (table $other 1 funcref)
  (elem (i32.const 0) $down $mixed_f)
  ;; n calls deep through the table
  (func $down (export "down") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (i32.const 1)
        (call_indirect (type $ii) (i32.sub (local.get $n) (i32.const 1)) (i32.const 0))))))
  ;; the same with direct calls
  (func $direct (export "direct") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $direct (i32.sub (local.get $n) (i32.const 1)))))))
  ;; compiled and interpreted in turn, n calls deep; through the table on odd levels
  (func $mixed (export "mixed") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (i32.const 2)
        (call_indirect (type $ii) (i32.sub (local.get $n) (i32.const 1)) (i32.const 1))))))
  (func $mixed_f (param $n i32) (result i32)
    (if (i32.eq (local.get $n) (i32.const -1)) (then (drop (call_indirect $other (type $ii) (i32.const 0) (i32.const 0)))))
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.trunc_f32_s (f32.const 1)))
      (else (i32.add (i32.trunc_f32_s (f32.const 3)) (call $mixed (i32.sub (local.get $n) (i32.const 1))))))))
