;; Bitwise CRC-32 (IEEE, reflected) over memory: the speed benchmark's loop.
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "123456789")
  (func (export "crc32") (param $p i32) (param $n i32) (result i32)
    (local $c i32) (local $k i32)
    (local.set $c (i32.const -1))
    (block $done
      (loop $bytes
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $c (i32.xor (local.get $c) (i32.load8_u (local.get $p))))
        (local.set $k (i32.const 8))
        (loop $bits
          (local.set $c
            (i32.xor (i32.shr_u (local.get $c) (i32.const 1))
                     (i32.and (i32.const 0xedb88320)
                              (i32.sub (i32.const 0) (i32.and (local.get $c) (i32.const 1))))))
          (br_if $bits (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $bytes)))
    (i32.xor (local.get $c) (i32.const -1))))
