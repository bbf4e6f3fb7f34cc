//@ edition: 2024
//! matrix: multiplies two 8x8 f32 matrices whose entries come from the call number,
//! then converts the result's trace and a scaled corner to integers with `as`
//! (saturating: non-trapping float-to-int); logs
//! "matrix <call> <trace as i32> <trace bits hex> <corner as i32>".
#![no_std]

mod wasmbed;

const N: usize = 8;

static mut CALLS: u32 = 0;

fn entry(call: u32, i: usize, j: usize, salt: u32) -> f32 {
    let v = (call.wrapping_mul(31) ^ salt).wrapping_add((i * 13 + j * 7) as u32) % 97;
    v as f32 / 8.0 - 5.5
}

fn decimal(out: &mut [u8], v: i32) -> usize {
    let mut n = 0;
    let mut u = v.unsigned_abs();
    let mut tmp = [0u8; 10];
    loop {
        tmp[n] = b'0' + (u % 10) as u8;
        n += 1;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    let mut k = 0;
    if v < 0 {
        out[0] = b'-';
        k = 1;
    }
    for i in 0..n {
        out[k + i] = tmp[n - 1 - i];
    }
    k + n
}

#[unsafe(export_name = "loop")]
pub extern "C" fn app_loop() -> i32 {
    // Safety: a Wasmbed application is single-threaded.
    let call = unsafe { CALLS };
    let mut a = [[0f32; N]; N];
    let mut b = [[0f32; N]; N];
    for i in 0..N {
        for j in 0..N {
            a[i][j] = entry(call, i, j, 0x55);
            b[i][j] = entry(call, j, i, 0xaa);
        }
    }
    let mut c = [[0f32; N]; N];
    for i in 0..N {
        for j in 0..N {
            let mut s = 0f32;
            for k in 0..N {
                s += a[i][k] * b[k][j];
            }
            c[i][j] = s;
        }
    }
    let mut trace = 0f32;
    for (i, row) in c.iter().enumerate() {
        trace += row[i];
    }
    // Far beyond i32: `as` saturates where the MVP's i32.trunc_f32_s would trap.
    let corner = (c[0][N - 1] * 1.0e9) as i32;

    let mut msg = [0u8; 96];
    msg[..7].copy_from_slice(b"matrix ");
    let mut n = 7 + decimal(&mut msg[7..], call as i32);
    msg[n] = b' ';
    n += 1;
    n += decimal(&mut msg[n..], trace as i32);
    msg[n] = b' ';
    n += 1;
    let bits = trace.to_bits();
    for s in (0..8).rev() {
        msg[n] = b"0123456789abcdef"[((bits >> (s * 4)) & 15) as usize];
        n += 1;
    }
    msg[n] = b' ';
    n += 1;
    n += decimal(&mut msg[n..], corner);
    wasmbed::log(wasmbed::Level::Info, core::str::from_utf8(&msg[..n]).unwrap_or("matrix: not utf-8"));
    unsafe { CALLS = call + 1 };
    100
}
