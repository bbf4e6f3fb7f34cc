;; simd: uses a v128 instruction, which the device interpreter does not support.
(module
  (func (export "loop") (result i32)
    (i32x4.extract_lane 0 (i32x4.splat (i32.const 7)))))
