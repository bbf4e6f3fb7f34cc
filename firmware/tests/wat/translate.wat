;; The translator's rewrites (deferred local.get and constants, retargeted local.set,
;; folded i32.eqz, branch value moves) at the places where they could go wrong.
(module
  (memory 1)
  ;; a deferred local.get below a block that writes the local on one path only
  (func (export "defer_block") (param $x i32) (param $c i32) (result i32)
    (local.get $x)
    (block
      (br_if 0 (local.get $c))
      (local.set $x (i32.const 100)))
    (i32.add (local.get $x)))
  ;; a deferred local.get below a local.set of the same local
  (func (export "defer_set") (param $x i32) (result i32)
    (local.get $x)
    (local.set $x (i32.add (local.get $x) (i32.const 1)))
    (i32.sub (local.get $x)))
  ;; the retargeted producer reads the local it now writes, and tee leaves the value
  (func (export "retarget") (param $x i32) (result i32)
    (local.set $x (i32.mul (local.get $x) (local.get $x)))
    (i32.add (local.tee $x (i32.add (local.get $x) (i32.const 3))) (local.get $x)))
  ;; a set after a drop must not retarget the instruction that made the dropped value
  (func (export "drop_then_set") (param $x i32) (result i32)
    (local $y i32)
    (i32.const 7)
    (drop (i32.add (local.get $x) (i32.const 1)))
    (local.set $y)
    (local.get $y))
  ;; br_if carrying a deferred local / constant; not taken keeps the operand
  (func (export "br_if_value") (param $x i32) (param $c i32) (result i32)
    (i32.add
      (block (result i32)
        (drop (br_if 0 (local.get $x) (local.get $c)))
        (drop (br_if 0 (i32.const 5) (i32.eqz (local.get $c))))
        (i32.const 9))
      (i32.const 1000)))
  ;; br_table with a value to blocks at different heights
  (func (export "br_table_value") (param $i i32) (result i32)
    (i32.add (i32.const 10000)
      (block $a (result i32)
        (i32.add (i32.const 100)
          (block $b (result i32)
            (br_table $a $b $a (i32.const 7) (local.get $i)))))))
  ;; if on a folded eqz, with a result from both arms
  (func (export "if_eqz") (param $x i32) (result i32)
    (if (result i32) (i32.eqz (local.get $x)) (then (i32.const 11)) (else (local.get $x))))
  ;; constants on the left of sub / mirrored comparisons
  (func (export "const_left") (param $x i32) (result i32)
    (i32.add (i32.mul (i32.sub (i32.const 10) (local.get $x)) (i32.const 100))
             (i32.add (i32.lt_u (i32.const 3) (local.get $x)) (i32.shl (i32.ge_s (i32.const -1) (local.get $x)) (i32.const 1)))))
  ;; select of deferred operands, memory through a constant address
  (func (export "select_mem") (param $x i32) (result i32)
    (i32.store (i32.const 16) (select (local.get $x) (i32.const 42) (local.get $x)))
    (i32.load (i32.const 16)))
  ;; a loop whose back edge carries the loop's fuel
  (func (export "count") (param $n i32) (result i32)
    (local $s i32)
    (loop $l
      (local.set $s (i32.add (local.get $s) (local.get $n)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $s))
  ;; comparisons folded into branches: if, br_if to a loop, br_if carrying a value
  (func (export "cmp_branch") (param $a i32) (param $b i32) (result i32)
    (local $n i32)
    (if (i32.lt_s (local.get $a) (local.get $b)) (then (local.set $n (i32.const 100))))
    (loop $l
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $n) (i32.const 105))))
    (block (result i32)
      (drop (br_if 0 (i32.const 7000) (i32.ge_u (local.get $b) (local.get $a))))
      (i32.const 8000))
    (i32.add (local.get $n))))
