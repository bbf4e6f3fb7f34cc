//! sensor-telemetry: reads the temperature sensor once a second and publishes it, in
//! milli-degrees Celsius as decimal text, on topic "temperature".
#![no_std]

mod wasmbed;

use wasmbed::{Level, ERR_BUSY, SENSOR_TEMPERATURE};

#[export_name = "loop"]
pub extern "C" fn app_loop() -> i32 {
    let t = match wasmbed::sensor_read(SENSOR_TEMPERATURE) {
        Some(t) => t,
        None => {
            wasmbed::log(Level::Warn, "no temperature sensor on this board");
            return 10_000;
        }
    };
    let mut buf = [0u8; 12];
    let text = wasmbed::format_i32(t, &mut buf);
    if wasmbed::publish("temperature", text.as_bytes()) == Err(ERR_BUSY) {
        wasmbed::log(Level::Warn, "telemetry rate limited");
    }
    1000
}
