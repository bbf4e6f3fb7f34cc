// sensor-telemetry: reads the temperature sensor once a second and publishes it, in
// milli-degrees Celsius as decimal text, on topic "temperature".
import { sensorRead, publish, log, SENSOR_TEMPERATURE, SENSOR_NONE, ERR_BUSY, LOG_WARN } from "./wasmbed";

export function loop(): i32 {
  const t = sensorRead(SENSOR_TEMPERATURE);
  if (t == SENSOR_NONE) {
    log(LOG_WARN, "no temperature sensor on this board");
    return 10000;
  }
  if (publish("temperature", t.toString()) == ERR_BUSY) {
    log(LOG_WARN, "telemetry rate limited");
  }
  return 1000;
}
