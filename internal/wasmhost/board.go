package wasmhost

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/api/protocol"
)

// LogLevel is a log line's level: the protocol's, which the ABI's log shares
// (docs/abi.md); any other value an application passes is taken as LevelInfo.
type LogLevel = protocol.LogLevel

// The log levels, as the protocol names them.
const (
	LevelDebug = protocol.LevelDebug
	LevelInfo  = protocol.LevelInfo
	LevelWarn  = protocol.LevelWarn
	LevelError = protocol.LevelError
)

// Sensor identifies a sensor of sensor_read.
type Sensor int32

// Sensors of ABI version 1, all read in milli-units.
const (
	SensorTemperature Sensor = 0 // m°C
	SensorHumidity    Sensor = 1 // m% relative humidity
	SensorLight       Sensor = 2 // mlux
	SensorSupply      Sensor = 3 // mV
)

// Clock is an application's time source: clock_ms, sleep_ms and the delay between loop
// calls all go through it, so a simulated clock makes a run instant and deterministic.
type Clock interface {
	// Now returns the current time; only differences between readings matter.
	Now() time.Time
	// Sleep waits for d or until ctx is done, returning ctx.Err() in that case.
	Sleep(ctx context.Context, d time.Duration) error
}

// Board is the device side of the ABI: everything a host function does besides reading
// and writing the module's memory. Implementations must be safe for concurrent use.
type Board interface {
	// Log receives a message of at most abi.MaxLogBytes bytes.
	Log(level LogLevel, msg string)
	// GPIOWrite drives pin and reports whether the board has it.
	GPIOWrite(pin int, high bool) bool
	// GPIORead reads pin; ok is false when the board has no such pin.
	GPIORead(pin int) (high, ok bool)
	// LEDSet switches a user LED and reports whether the board has it.
	LEDSet(led int, on bool) bool
	// SensorRead reads a sensor in milli-units; ok is false when the board lacks it.
	SensorRead(s Sensor) (milli int32, ok bool)
	// Publish takes a telemetry record that already passed the ABI's checks and rate
	// limit; data is the board's to keep. An error drops it and the app sees ERR_BUSY.
	Publish(topic string, data []byte) error
	// Config returns the value of an Application configuration key.
	Config(key string) (value string, ok bool)
	// Clock returns the board's time source.
	Clock() Clock
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits for d or until ctx is done.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SimClock is a simulated clock whose Sleep returns at once after moving time forward,
// so an application's delays cost no real time. It is safe for concurrent use.
type SimClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewSimClock returns a simulated clock that starts at start.
func NewSimClock(start time.Time) *SimClock { return &SimClock{now: start} }

// Now returns the simulated time.
func (c *SimClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep advances the simulated time by d, unless ctx is already done.
func (c *SimClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Advance moves the simulated time forward by d (negative values are ignored).
func (c *SimClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// LogRecord is one log line of an application.
type LogRecord struct {
	Time    time.Time
	Level   LogLevel
	Message string
}

// Record is one published telemetry record.
type Record struct {
	Time  time.Time
	Topic string
	Data  []byte
}

// LEDChange is one switch of a user LED.
type LEDChange struct {
	Time time.Time
	LED  int
	On   bool
}

// SimBoardConfig describes a simulated board. Zero values take the defaults noted.
type SimBoardConfig struct {
	// Pins is the number of GPIO pins (default 16) and LEDs the number of user LEDs
	// (default 4).
	Pins, LEDs int
	// Sensors holds sensor values; nil means a board with all four sensors at room
	// conditions, an empty map a board with none.
	Sensors map[Sensor]int32
	// Config is the Application's configuration.
	Config map[string]string
	// Clock defaults to a SimClock starting now.
	Clock Clock
	// OnLog and OnPublish, when set, also receive every log line and record (a virtual
	// device forwards them to its gateway). An OnPublish error becomes ERR_BUSY.
	OnLog     func(LogRecord)
	OnPublish func(Record) error
}

// SimBoard is an in-memory Board: it keeps pin and LED state, and records log lines,
// telemetry and LED changes for tests and virtual devices to inspect.
type SimBoard struct {
	clock     Clock
	onLog     func(LogRecord)
	onPublish func(Record) error

	mu         sync.Mutex
	gpio       []bool
	leds       []bool
	sensors    map[Sensor]int32
	config     map[string]string
	logs       []LogRecord
	records    []Record
	ledChanges []LEDChange
}

// DefaultSensors are the readings of a simulated board at room conditions.
func DefaultSensors() map[Sensor]int32 {
	return map[Sensor]int32{
		SensorTemperature: 21500,
		SensorHumidity:    45000,
		SensorLight:       300000,
		SensorSupply:      3300,
	}
}

// NewSimBoard returns a simulated board described by cfg.
func NewSimBoard(cfg SimBoardConfig) *SimBoard {
	if cfg.Pins <= 0 {
		cfg.Pins = 16
	}
	if cfg.LEDs <= 0 {
		cfg.LEDs = 4
	}
	if cfg.Sensors == nil {
		cfg.Sensors = DefaultSensors()
	}
	if cfg.Clock == nil {
		cfg.Clock = NewSimClock(time.Now())
	}
	b := &SimBoard{
		clock:     cfg.Clock,
		onLog:     cfg.OnLog,
		onPublish: cfg.OnPublish,
		gpio:      make([]bool, cfg.Pins),
		leds:      make([]bool, cfg.LEDs),
		sensors:   make(map[Sensor]int32, len(cfg.Sensors)),
		config:    make(map[string]string, len(cfg.Config)),
	}
	for k, v := range cfg.Sensors {
		b.sensors[k] = v
	}
	for k, v := range cfg.Config {
		b.config[k] = v
	}
	return b
}

// Log records a log line.
func (b *SimBoard) Log(level LogLevel, msg string) {
	r := LogRecord{Time: b.clock.Now(), Level: level, Message: msg}
	b.mu.Lock()
	b.logs = append(b.logs, r)
	b.mu.Unlock()
	if b.onLog != nil {
		b.onLog(r)
	}
}

// GPIOWrite sets a pin.
func (b *SimBoard) GPIOWrite(pin int, high bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pin < 0 || pin >= len(b.gpio) {
		return false
	}
	b.gpio[pin] = high
	return true
}

// GPIORead reads a pin.
func (b *SimBoard) GPIORead(pin int) (high, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pin < 0 || pin >= len(b.gpio) {
		return false, false
	}
	return b.gpio[pin], true
}

// SetGPIO drives a pin from outside, as a button or another chip would; it reports
// whether the board has the pin.
func (b *SimBoard) SetGPIO(pin int, high bool) bool { return b.GPIOWrite(pin, high) }

// LEDSet switches an LED and records the change.
func (b *SimBoard) LEDSet(led int, on bool) bool {
	t := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if led < 0 || led >= len(b.leds) {
		return false
	}
	if b.leds[led] != on {
		b.ledChanges = append(b.ledChanges, LEDChange{Time: t, LED: led, On: on})
	}
	b.leds[led] = on
	return true
}

// LED reports whether an LED is on.
func (b *SimBoard) LED(led int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return led >= 0 && led < len(b.leds) && b.leds[led]
}

// SensorRead reads a sensor.
func (b *SimBoard) SensorRead(s Sensor) (int32, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.sensors[s]
	return v, ok
}

// SetSensor sets the value a sensor reads from now on.
func (b *SimBoard) SetSensor(s Sensor, milli int32) {
	b.mu.Lock()
	b.sensors[s] = milli
	b.mu.Unlock()
}

// Publish records a telemetry record and passes it to OnPublish.
func (b *SimBoard) Publish(topic string, data []byte) error {
	r := Record{Time: b.clock.Now(), Topic: topic, Data: data}
	if b.onPublish != nil {
		if err := b.onPublish(r); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.records = append(b.records, r)
	b.mu.Unlock()
	return nil
}

// Config returns a configuration value.
func (b *SimBoard) Config(key string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.config[key]
	return v, ok
}

// SetConfig sets a configuration value, as an updated Application would.
func (b *SimBoard) SetConfig(key, value string) {
	b.mu.Lock()
	b.config[key] = value
	b.mu.Unlock()
}

// Clock returns the board's clock.
func (b *SimBoard) Clock() Clock { return b.clock }

// Logs returns a copy of the log lines so far.
func (b *SimBoard) Logs() []LogRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.logs)
}

// Records returns a copy of the telemetry records so far.
func (b *SimBoard) Records() []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.records)
}

// LEDChanges returns a copy of the LED switches so far.
func (b *SimBoard) LEDChanges() []LEDChange {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.ledChanges)
}
