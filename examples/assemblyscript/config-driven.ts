// config-driven: blinks LED 0 at the rate set by the Application's config key
// period_ms (default 500 ms when it is missing or not a positive number).
import { configGetInt, ledSet } from "./wasmbed";

let periodMs: i32 = 500;
let on = false;

export function setup(): void {
  const v = configGetInt("period_ms", 500);
  if (v > 0) periodMs = v;
}

export function loop(): i32 {
  on = !on;
  ledSet(0, on);
  return periodMs;
}
