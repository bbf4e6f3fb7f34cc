//! config-driven: blinks LED 0 at the rate set by the Application's config key
//! `period_ms` (default 500 ms when it is missing or not a positive number).
#![no_std]

mod wasmbed;

// Safety of the statics below: a Wasmbed application is single-threaded.
static mut PERIOD_MS: i32 = 500;
static mut ON: bool = false;

#[export_name = "setup"]
pub extern "C" fn setup() {
    let mut buf = [0u8; 16];
    let period = wasmbed::config_get("period_ms", &mut buf).and_then(wasmbed::parse_i32);
    if let Some(p) = period.filter(|&p| p > 0) {
        unsafe { PERIOD_MS = p }
    }
}

#[export_name = "loop"]
pub extern "C" fn app_loop() -> i32 {
    let on = unsafe {
        ON = !ON;
        ON
    };
    let _ = wasmbed::led_set(0, on);
    unsafe { PERIOD_MS }
}
