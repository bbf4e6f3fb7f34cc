// blink: toggles LED 0 every 500 ms. loop() returns the delay until the host calls it
// again, so the application never sleeps inside the host.
import { ledSet, log, LOG_INFO } from "./wasmbed";

let on = false;

export function setup(): void {
  log(LOG_INFO, "blink: started");
}

export function loop(): i32 {
  on = !on;
  ledSet(0, on);
  return 500;
}
