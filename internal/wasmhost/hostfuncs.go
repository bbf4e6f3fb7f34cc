package wasmhost

import (
	"github.com/wasmbed/wasmbed/api/abi"

	"context"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostFunc implements one import; stack holds the parameters and receives the result.
type hostFunc func(ctx context.Context, a *App, mod api.Module, stack []uint64)

var hostFuncs = map[string]hostFunc{
	"log":         hostLog,
	"clock_ms":    hostClockMs,
	"sleep_ms":    hostSleepMs,
	"yield":       func(context.Context, *App, api.Module, []uint64) { runtime.Gosched() },
	"gpio_write":  hostGPIOWrite,
	"gpio_read":   hostGPIORead,
	"led_set":     hostLEDSet,
	"sensor_read": hostSensorRead,
	"publish":     hostPublish,
	"config_get":  hostConfigGet,
}

// instantiateHostModule defines module "wasmbed" from the imports table, so the types
// the host implements are by construction the ones the ABI lists.
func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.HostModule)
	for _, im := range abi.Imports() {
		f, ok := hostFuncs[im.Name]
		if !ok {
			return fmt.Errorf("host function %s not implemented", im.Name)
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				a, ok := ctx.Value(appKey{}).(*App)
				if !ok {
					panic(&hostTrap{reason: "wasmbed host function called outside an application"})
				}
				a.checkTime(a.clock.Now())
				f(ctx, a, mod, stack)
			}), im.Type.Params, im.Type.Results).
			Export(im.Name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiate host module: %w", err)
	}
	return nil
}

var errOutOfBounds = &hostTrap{reason: "out of bounds memory access"}

// memoryOf returns the module's memory 0, or nil when it has none: wazero then returns
// a nil *MemoryInstance inside a non-nil api.Memory, which panics on first use.
func memoryOf(mod api.Module) api.Memory {
	mem := mod.Memory()
	if mem == nil || reflect.ValueOf(mem).IsNil() {
		return nil
	}
	return mem
}

// read returns the bytes of a (ptr, len) pair of memory 0, trapping when the pair is out
// of bounds. The slice aliases the module's memory.
func read(mod api.Module, ptr, n uint64) []byte {
	p, l := uint32(ptr), uint32(n)
	mem := memoryOf(mod)
	if mem == nil {
		if l == 0 {
			return nil
		}
		panic(errOutOfBounds)
	}
	b, ok := mem.Read(p, l)
	if !ok {
		panic(errOutOfBounds)
	}
	return b
}

func i32Arg(v uint64) int32 { return api.DecodeI32(v) }

func result(stack []uint64, v int32) { stack[0] = api.EncodeI32(v) }

func hostLog(_ context.Context, a *App, mod api.Module, stack []uint64) {
	level := LevelInfo
	if l := i32Arg(stack[0]); l >= int32(LevelDebug) && l <= int32(LevelError) {
		level = LogLevel(l)
	}
	msg := read(mod, stack[1], stack[2])
	if len(msg) > abi.MaxLogBytes {
		// Back off to the start of a rune the cut would split.
		cut := abi.MaxLogBytes
		for cut > abi.MaxLogBytes-utf8.UTFMax+1 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	now := a.clock.Now()
	a.reportDrops(now)
	if !a.limits.logs.take(now) {
		count(&a.limits.lines)
		return
	}
	a.board.Log(level, string(msg))
}

func hostClockMs(_ context.Context, a *App, _ api.Module, stack []uint64) {
	stack[0] = api.EncodeI64(a.clock.Now().Sub(a.started).Milliseconds())
}

func hostSleepMs(ctx context.Context, a *App, _ api.Module, stack []uint64) {
	ms := min(max(i32Arg(stack[0]), 0), abi.MaxSleepMs)
	if ms == 0 {
		return
	}
	d := time.Duration(ms) * time.Millisecond
	before := a.clock.Now()
	if a.overTime(before, d) { // it would end past the budget: fail now
		panic(timeTrap)
	}
	defer func() { a.overslept += max(a.clock.Now().Sub(before)-d, 0) }()
	if a.budget != nil {
		a.budget.pause()
		defer a.budget.resume()
	}
	// A cancelled sleep ends early; wazero then ends the call since ctx is done.
	_ = a.clock.Sleep(ctx, d)
}

func hostGPIOWrite(_ context.Context, a *App, _ api.Module, stack []uint64) {
	if !a.board.GPIOWrite(int(i32Arg(stack[0])), i32Arg(stack[1]) != 0) {
		result(stack, abi.ErrNotFound)
		return
	}
	result(stack, abi.OK)
}

func hostGPIORead(_ context.Context, a *App, _ api.Module, stack []uint64) {
	high, ok := a.board.GPIORead(int(i32Arg(stack[0])))
	switch {
	case !ok:
		result(stack, abi.ErrNotFound)
	case high:
		result(stack, 1)
	default:
		result(stack, 0)
	}
}

func hostLEDSet(_ context.Context, a *App, _ api.Module, stack []uint64) {
	if !a.board.LEDSet(int(i32Arg(stack[0])), i32Arg(stack[1]) != 0) {
		result(stack, abi.ErrNotFound)
		return
	}
	result(stack, abi.OK)
}

func hostSensorRead(_ context.Context, a *App, _ api.Module, stack []uint64) {
	v, ok := a.board.SensorRead(Sensor(i32Arg(stack[0])))
	if !ok {
		v = abi.SensorNone
	}
	result(stack, v)
}

func hostPublish(_ context.Context, a *App, mod api.Module, stack []uint64) {
	topic := read(mod, stack[0], stack[1])
	data := read(mod, stack[2], stack[3])
	if len(topic) == 0 || len(topic) > abi.MaxTopicBytes || !utf8.Valid(topic) || len(data) > abi.MaxPublishBytes {
		result(stack, abi.ErrInvalid)
		return
	}
	if !a.limits.publishes.take(a.clock.Now()) || a.board.Publish(string(topic), append([]byte(nil), data...)) != nil {
		count(&a.limits.records)
		result(stack, abi.ErrBusy)
		return
	}
	result(stack, abi.OK)
}

func hostConfigGet(_ context.Context, a *App, mod api.Module, stack []uint64) {
	key := read(mod, stack[0], stack[1])
	buf := read(mod, stack[2], stack[3])
	v, ok := a.board.Config(string(key))
	if !ok {
		result(stack, abi.ErrNotFound)
		return
	}
	copy(buf, v)
	result(stack, int32(min(len(v), math.MaxInt32)))
}
