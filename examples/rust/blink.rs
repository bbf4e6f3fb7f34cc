//! blink: toggles LED 0 every 500 ms. `loop` returns the delay until the host calls it
//! again, so the application never sleeps inside the host.
#![no_std]

mod wasmbed;

static mut ON: bool = false;

#[export_name = "setup"]
pub extern "C" fn setup() {
    wasmbed::log(wasmbed::Level::Info, "blink: started");
}

#[export_name = "loop"]
pub extern "C" fn app_loop() -> i32 {
    // Safety: a Wasmbed application is single-threaded.
    let on = unsafe {
        ON = !ON;
        ON
    };
    let _ = wasmbed::led_set(0, on);
    500
}
