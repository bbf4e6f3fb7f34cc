// The Wasmbed application ABI, version 2, for AssemblyScript (docs/abi.md).
//
// The builder writes this file next to your main.ts; import what you need from it:
//
//   import { ledSet } from "./wasmbed";
//
//   export function loop(): i32 {
//     ledSet(0, true);
//     return 500; // call loop again in 500 ms
//   }
//
// Modules are compiled with --runtime stub (a bump allocator, never freed): allocate
// buffers once, at module level, rather than in every loop call.

/** The ABI version this file implements. */
export const ABI_VERSION: i32 = 2;

/** Result code: success. */
export const OK: i32 = 0;
/** Result code: no such pin, LED or configuration key. */
export const ERR_NOT_FOUND: i32 = -1;
/** Result code: a bad topic or size. */
export const ERR_INVALID: i32 = -2;
/** Result code: rate limited; the record was dropped. */
export const ERR_BUSY: i32 = -3;
/** Returned by sensorRead when the board has no such sensor. */
export const SENSOR_NONE: i32 = i32.MIN_VALUE;

/** Sensor id: temperature in m°C. */
export const SENSOR_TEMPERATURE: i32 = 0;
/** Sensor id: relative humidity in m%. */
export const SENSOR_HUMIDITY: i32 = 1;
/** Sensor id: light in mlux. */
export const SENSOR_LIGHT: i32 = 2;
/** Sensor id: supply voltage in mV. */
export const SENSOR_VOLTAGE: i32 = 3;

/** Log level: debug detail. */
export const LOG_DEBUG: i32 = 0;
/** Log level: normal information. */
export const LOG_INFO: i32 = 1;
/** Log level: something looks wrong. */
export const LOG_WARN: i32 = 2;
/** Log level: something failed. */
export const LOG_ERROR: i32 = 3;

// Raw host functions imported from module "wasmbed". Pointers are offsets into memory 0.

/** Writes a UTF-8 message (truncated to 256 bytes) to the device log. */
@external("wasmbed", "log")
export declare function wasmbed_log(level: i32, ptr: usize, len: i32): void;
/** Milliseconds since the application was started (monotonic). */
@external("wasmbed", "clock_ms")
export declare function clockMs(): i64;
/** Blocks for `ms` milliseconds, clamped to 0..1000. Prefer returning a delay from loop. */
@external("wasmbed", "sleep_ms")
export declare function sleepMs(ms: i32): void;
/** A scheduling point: the host may serve its session before returning. */
@external("wasmbed", "yield")
export declare function yieldNow(): void;
/** Drives a GPIO pin low (0) or high (non-zero); returns OK or ERR_NOT_FOUND. */
@external("wasmbed", "gpio_write")
export declare function wasmbed_gpio_write(pin: i32, level: i32): i32;
/** Reads a GPIO pin: 0, 1 or ERR_NOT_FOUND. */
@external("wasmbed", "gpio_read")
export declare function gpioRead(pin: i32): i32;
/** Switches a user LED off (0) or on; returns OK or ERR_NOT_FOUND. */
@external("wasmbed", "led_set")
export declare function wasmbed_led_set(led: i32, on: i32): i32;
/** Reads a sensor in milli-units, or SENSOR_NONE. */
@external("wasmbed", "sensor_read")
export declare function sensorRead(sensor: i32): i32;
/** Publishes a telemetry record; returns OK, ERR_INVALID or ERR_BUSY. */
@external("wasmbed", "publish")
export declare function wasmbed_publish(topicPtr: usize, topicLen: i32, dataPtr: usize, dataLen: i32): i32;
/** Copies a configuration value into a buffer; returns its full length or ERR_NOT_FOUND. */
@external("wasmbed", "config_get")
export declare function wasmbed_config_get(keyPtr: usize, keyLen: i32, bufPtr: usize, bufCap: i32): i32;

// Safe wrappers taking AssemblyScript strings (encoded to UTF-8).

/** Writes `msg` to the device log at `level` (LOG_*). */
export function log(level: i32, msg: string): void {
  const buf = String.UTF8.encode(msg);
  wasmbed_log(level, changetype<usize>(buf), buf.byteLength);
}

/** Drives GPIO `pin` high or low; returns OK or ERR_NOT_FOUND. */
export function gpioWrite(pin: i32, high: bool): i32 {
  return wasmbed_gpio_write(pin, high ? 1 : 0);
}

/** Switches user LED `led` on or off; returns OK or ERR_NOT_FOUND. */
export function ledSet(led: i32, on: bool): i32 {
  return wasmbed_led_set(led, on ? 1 : 0);
}

/** Publishes the UTF-8 text `data` on `topic`; returns OK, ERR_INVALID or ERR_BUSY. */
export function publish(topic: string, data: string): i32 {
  const t = String.UTF8.encode(topic);
  const d = String.UTF8.encode(data);
  return wasmbed_publish(changetype<usize>(t), t.byteLength, changetype<usize>(d), d.byteLength);
}

/** Returns configuration value `key` (at most `cap` bytes, as UTF-8 text), or null when unset. */
export function configGet(key: string, cap: i32 = 64): string | null {
  const k = String.UTF8.encode(key);
  const buf = new ArrayBuffer(cap);
  const n = wasmbed_config_get(changetype<usize>(k), k.byteLength, changetype<usize>(buf), cap);
  if (n < 0) return null;
  return String.UTF8.decodeUnsafe(changetype<usize>(buf), <usize>min(n, cap));
}

/** Returns configuration value `key` parsed as a decimal integer, or `fallback`. */
export function configGetInt(key: string, fallback: i32): i32 {
  const s = configGet(key);
  if (s === null) return fallback;
  const v = I32.parseInt(s, 10);
  return isNaN(v) ? fallback : <i32>v;
}
