// Starter templates of the application editor, one per language. Each imports the
// Wasmbed ABI (docs/abi.md) the way the builder's SDK provides it.
import type { Language } from './types';

export const templates: Record<Language, string> = {
  c: `// Toggle LED 0; the host calls loop() again after the delay it returns (ms).
#include "wasmbed.h"

static int32_t led;

WASMBED_EXPORT(setup) void setup(void) {
    wasmbed_log_str(WASMBED_LOG_INFO, "hello from C");
}

WASMBED_EXPORT(loop) int32_t loop(void) {
    led = !led;
    wasmbed_led_set(0, led);
    return 1000;
}
`,
  assemblyscript: `// Toggle LED 0; the host calls loop() again after the delay it returns (ms).
import { ledSet, log, LOG_INFO } from "./wasmbed";

let led = false;

export function setup(): void {
  log(LOG_INFO, "hello from AssemblyScript");
}

export function loop(): i32 {
  led = !led;
  ledSet(0, led);
  return 1000;
}
`,
  wat: `;; Toggle LED 0; the host calls loop again after the delay it returns (ms).
(module
  (import "wasmbed" "led_set" (func $led_set (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $led (mut i32) (i32.const 0))
  (func (export "loop") (result i32)
    (global.set $led (i32.xor (global.get $led) (i32.const 1)))
    (drop (call $led_set (i32.const 0) (global.get $led)))
    (i32.const 1000)))
`,
  rust: `//! Toggle LED 0; the host calls loop again after the delay it returns (ms).
#![no_std]

mod wasmbed;

static mut LED: bool = false;

#[export_name = "setup"]
pub extern "C" fn setup() {
    wasmbed::log(wasmbed::Level::Info, "hello from Rust");
}

#[export_name = "loop"]
pub extern "C" fn app_loop() -> i32 {
    // Safety: an application runs on one thread.
    let led = unsafe {
        LED = !LED;
        LED
    };
    let _ = wasmbed::led_set(0, led);
    1000
}
`,
};
