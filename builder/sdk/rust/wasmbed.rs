//! The Wasmbed application ABI, version 2, for Rust (docs/abi.md).
//!
//! The builder writes this file next to your `main.rs`; declare it with `mod wasmbed;`.
//! Your crate is `#![no_std]` and compiled for `wasm32-unknown-unknown` with
//! `panic=abort`; this module provides the panic handler (a trap).
//!
//! ```ignore
//! #![no_std]
//! mod wasmbed;
//!
//! #[export_name = "loop"]
//! pub extern "C" fn app_loop() -> i32 {
//!     wasmbed::led_set(0, true);
//!     500 // call loop again in 500 ms
//! }
//! ```
#![allow(dead_code)]

/// The ABI version this module implements.
pub const ABI_VERSION: i32 = 2;

/// Result code: success.
pub const OK: i32 = 0;
/// Result code: no such pin, LED or configuration key.
pub const ERR_NOT_FOUND: i32 = -1;
/// Result code: a bad topic or size.
pub const ERR_INVALID: i32 = -2;
/// Result code: rate limited; the record was dropped.
pub const ERR_BUSY: i32 = -3;
/// Returned by `sensor_read` when the board has no such sensor.
pub const SENSOR_NONE: i32 = i32::MIN;

/// Sensor ids for `sensor_read`; values are in milli-units.
pub const SENSOR_TEMPERATURE: i32 = 0;
/// Relative humidity in m%.
pub const SENSOR_HUMIDITY: i32 = 1;
/// Light in mlux.
pub const SENSOR_LIGHT: i32 = 2;
/// Supply voltage in mV.
pub const SENSOR_VOLTAGE: i32 = 3;

/// Log levels for `log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    /// Debug detail.
    Debug = 0,
    /// Normal information.
    Info = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Something failed.
    Error = 3,
}

/// The raw host functions imported from module `wasmbed`.
pub mod sys {
    #[link(wasm_import_module = "wasmbed")]
    unsafe extern "C" {
        /// Writes a UTF-8 message (truncated to 256 bytes) to the device log.
        pub fn log(level: i32, ptr: *const u8, len: i32);
        /// Milliseconds since the application was started (monotonic).
        pub fn clock_ms() -> i64;
        /// Blocks for `ms` milliseconds, clamped to 0..1000.
        pub fn sleep_ms(ms: i32);
        /// A scheduling point; never fails.
        #[link_name = "yield"]
        pub fn yield_now();
        /// Drives a GPIO pin low (0) or high (non-zero); 0 or ERR_NOT_FOUND.
        pub fn gpio_write(pin: i32, level: i32) -> i32;
        /// Reads a GPIO pin: 0, 1 or ERR_NOT_FOUND.
        pub fn gpio_read(pin: i32) -> i32;
        /// Switches a user LED off (0) or on; 0 or ERR_NOT_FOUND.
        pub fn led_set(led: i32, on: i32) -> i32;
        /// Reads a sensor in milli-units, or SENSOR_NONE.
        pub fn sensor_read(sensor: i32) -> i32;
        /// Publishes a telemetry record; 0, ERR_INVALID or ERR_BUSY.
        pub fn publish(topic_ptr: *const u8, topic_len: i32, data_ptr: *const u8, data_len: i32) -> i32;
        /// Copies a configuration value into a buffer; its full length or ERR_NOT_FOUND.
        pub fn config_get(key_ptr: *const u8, key_len: i32, buf_ptr: *mut u8, buf_cap: i32) -> i32;
    }
}

/// Writes `msg` to the device log at `level` (the host truncates it to 256 bytes).
pub fn log(level: Level, msg: &str) {
    unsafe { sys::log(level as i32, msg.as_ptr(), msg.len() as i32) }
}

/// Milliseconds since the application was started.
pub fn clock_ms() -> i64 {
    unsafe { sys::clock_ms() }
}

/// Blocks for `ms` milliseconds (clamped to 0..1000); prefer returning a delay from `loop`.
pub fn sleep_ms(ms: i32) {
    unsafe { sys::sleep_ms(ms) }
}

/// Lets the host serve its session before returning.
pub fn yield_now() {
    unsafe { sys::yield_now() }
}

/// Drives GPIO `pin` high or low; `Err(ERR_NOT_FOUND)` when the board has no such pin.
pub fn gpio_write(pin: i32, high: bool) -> Result<(), i32> {
    code(unsafe { sys::gpio_write(pin, high as i32) })
}

/// Reads GPIO `pin`; `Err(ERR_NOT_FOUND)` when the board has no such pin.
pub fn gpio_read(pin: i32) -> Result<bool, i32> {
    match unsafe { sys::gpio_read(pin) } {
        r if r < 0 => Err(r),
        r => Ok(r != 0),
    }
}

/// Switches user LED `led` on or off; `Err(ERR_NOT_FOUND)` when the board has no such LED.
pub fn led_set(led: i32, on: bool) -> Result<(), i32> {
    code(unsafe { sys::led_set(led, on as i32) })
}

/// Reads `sensor` (one of the `SENSOR_*` ids) in milli-units; `None` when the board lacks it.
pub fn sensor_read(sensor: i32) -> Option<i32> {
    match unsafe { sys::sensor_read(sensor) } {
        SENSOR_NONE => None,
        v => Some(v),
    }
}

/// Publishes `data` on `topic`; `Err(ERR_INVALID)` or `Err(ERR_BUSY)` when refused.
pub fn publish(topic: &str, data: &[u8]) -> Result<(), i32> {
    code(unsafe { sys::publish(topic.as_ptr(), topic.len() as i32, data.as_ptr(), data.len() as i32) })
}

/// Copies configuration value `key` into `buf` and returns the bytes copied, or `None`
/// when the key is not set. A value longer than `buf` is truncated.
pub fn config_get<'a>(key: &str, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let n = unsafe { sys::config_get(key.as_ptr(), key.len() as i32, buf.as_mut_ptr(), buf.len() as i32) };
    if n < 0 {
        return None;
    }
    let n = core::cmp::min(n as usize, buf.len());
    Some(&buf[..n])
}

/// Parses a decimal integer (optional leading '-'); `None` when there is no digit or it overflows.
pub fn parse_i32(s: &[u8]) -> Option<i32> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i32 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i32)?;
    }
    Some(if neg { -v } else { v })
}

/// Formats `v` in decimal into `buf` and returns the text.
pub fn format_i32(v: i32, buf: &mut [u8; 12]) -> &str {
    let mut tmp = [0u8; 11];
    let mut n = 0;
    let mut u = (v as i64).unsigned_abs();
    loop {
        tmp[n] = b'0' + (u % 10) as u8;
        n += 1;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    let mut len = 0;
    if v < 0 {
        buf[0] = b'-';
        len = 1;
    }
    while n > 0 {
        n -= 1;
        buf[len] = tmp[n];
        len += 1;
    }
    // Only ASCII digits and '-' were written.
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

fn code(r: i32) -> Result<(), i32> {
    if r < 0 {
        Err(r)
    } else {
        Ok(())
    }
}

/// Traps on panic: the host ends the application with state Failed.
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
