package platforms_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/api/boards"
	"github.com/wasmbed/wasmbed/emulation/platforms"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

// macro is one #define of a board's C source: object-like (params nil) or
// function-like.
type macro struct {
	params []string
	body   string
}

var (
	defineRe  = regexp.MustCompile(`^#define\s+([A-Za-z_][A-Za-z0-9_]*)(\(([^)]*)\))?\s*(.*)$`)
	commentRe = regexp.MustCompile(`/\*.*?\*/|//.*$`)
	castRe    = regexp.MustCompile(`\(\s*(?:const\s+)?(?:volatile\s+)?u?int(?:8|16|32|64)_t\s*\)`)
	identRe   = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// defines reads the #define lines of a C file (continued lines joined, comments dropped).
func defines(t *testing.T, path string) map[string]macro {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	out := map[string]macro{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(commentRe.ReplaceAllString(line, ""))
		m := defineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		mc := macro{body: strings.TrimSpace(m[4])}
		if m[2] != "" {
			mc.params = []string{}
			for _, p := range strings.Split(m[3], ",") {
				mc.params = append(mc.params, strings.TrimSpace(p))
			}
		}
		out[m[1]] = mc
	}
	return out
}

// expand replaces macros in expr until none is left (depth-limited).
func expand(defs map[string]macro, expr string, depth int) (string, error) {
	if depth > 32 {
		return "", fmt.Errorf("macro expansion too deep in %q", expr)
	}
	var b strings.Builder
	for i := 0; i < len(expr); {
		loc := identRe.FindStringIndex(expr[i:])
		if loc == nil {
			b.WriteString(expr[i:])
			break
		}
		start, end := i+loc[0], i+loc[1]
		// An identifier glued to a number (0x50cu) is part of the number.
		if start > 0 && (expr[start-1] >= '0' && expr[start-1] <= '9' || expr[start-1] == 'x' || expr[start-1] == 'X') {
			b.WriteString(expr[i:end])
			i = end
			continue
		}
		b.WriteString(expr[i:start])
		name := expr[start:end]
		m, ok := defs[name]
		if !ok {
			b.WriteString(name)
			i = end
			continue
		}
		body := m.body
		if m.params != nil {
			rest := strings.TrimLeft(expr[end:], " ")
			if !strings.HasPrefix(rest, "(") {
				return "", fmt.Errorf("%s used without arguments", name)
			}
			open := len(expr) - len(rest)
			depthP, j := 0, open
			var args []string
			argStart := open + 1
			for ; j < len(expr); j++ {
				switch expr[j] {
				case '(':
					depthP++
				case ')':
					depthP--
				case ',':
					if depthP == 1 {
						args = append(args, expr[argStart:j])
						argStart = j + 1
					}
				}
				if depthP == 0 {
					break
				}
			}
			if depthP != 0 {
				return "", fmt.Errorf("unbalanced arguments of %s", name)
			}
			args = append(args, expr[argStart:j])
			if len(args) != len(m.params) {
				return "", fmt.Errorf("%s takes %d arguments, got %d", name, len(m.params), len(args))
			}
			body = identRe.ReplaceAllStringFunc(body, func(id string) string {
				for k, p := range m.params {
					if id == p {
						return "(" + args[k] + ")"
					}
				}
				return id
			})
			end = j + 1
		}
		sub, err := expand(defs, body, depth+1)
		if err != nil {
			return "", err
		}
		b.WriteString("(" + sub + ")")
		i = end
	}
	return b.String(), nil
}

// eval evaluates a C constant expression over unsigned integers: literals (with u/U/l/L
// suffixes), parentheses, * / + - << >> & ^ |, after casts are dropped.
func eval(defs map[string]macro, expr string) (uint64, error) {
	s, err := expand(defs, expr, 0)
	if err != nil {
		return 0, err
	}
	s = castRe.ReplaceAllString(s, "")
	p := &exprParser{s: s}
	v, err := p.or()
	if err == nil && strings.TrimSpace(p.s[p.i:]) != "" {
		err = fmt.Errorf("unexpected %q", p.s[p.i:])
	}
	if err != nil {
		return 0, fmt.Errorf("%s = %s: %w", expr, s, err)
	}
	return v, nil
}

type exprParser struct {
	s string
	i int
}

func (p *exprParser) skip() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *exprParser) op(ops ...string) string {
	p.skip()
	for _, o := range ops {
		if strings.HasPrefix(p.s[p.i:], o) {
			p.i += len(o)
			return o
		}
	}
	return ""
}

func (p *exprParser) binary(next func() (uint64, error), apply func(string, uint64, uint64) uint64, ops ...string) (uint64, error) {
	v, err := next()
	if err != nil {
		return 0, err
	}
	for {
		o := p.op(ops...)
		if o == "" {
			return v, nil
		}
		w, err := next()
		if err != nil {
			return 0, err
		}
		v = apply(o, v, w)
	}
}

func (p *exprParser) or() (uint64, error) {
	return p.binary(p.xor, func(_ string, a, b uint64) uint64 { return a | b }, "|")
}
func (p *exprParser) xor() (uint64, error) {
	return p.binary(p.and, func(_ string, a, b uint64) uint64 { return a ^ b }, "^")
}
func (p *exprParser) and() (uint64, error) {
	return p.binary(p.shift, func(_ string, a, b uint64) uint64 { return a & b }, "&")
}
func (p *exprParser) shift() (uint64, error) {
	return p.binary(p.sum, func(o string, a, b uint64) uint64 {
		if o == "<<" {
			return a << b
		}
		return a >> b
	}, "<<", ">>")
}
func (p *exprParser) sum() (uint64, error) {
	return p.binary(p.product, func(o string, a, b uint64) uint64 {
		if o == "+" {
			return a + b
		}
		return a - b
	}, "+", "-")
}
func (p *exprParser) product() (uint64, error) {
	return p.binary(p.unary, func(o string, a, b uint64) uint64 {
		if o == "*" {
			return a * b
		}
		if b == 0 {
			return 0
		}
		return a / b
	}, "*", "/")
}

var literalRe = regexp.MustCompile(`^(0[xX][0-9A-Fa-f]+|[0-9]+)[uUlL]*`)

func (p *exprParser) unary() (uint64, error) {
	p.skip()
	if p.op("(") != "" {
		v, err := p.or()
		if err != nil {
			return 0, err
		}
		if p.op(")") == "" {
			return 0, fmt.Errorf("missing ) at %d", p.i)
		}
		return v, nil
	}
	m := literalRe.FindStringSubmatch(p.s[p.i:])
	if m == nil {
		return 0, fmt.Errorf("not a constant at %q", p.s[p.i:])
	}
	p.i += len(m[0])
	return strconv.ParseUint(m[1], 0, 64)
}

// irqNumber returns the number of an interrupt target "controller@n".
func irqNumber(t *testing.T, target string) (string, uint64) {
	t.Helper()
	ctl, n, _ := strings.Cut(target, "@")
	v, err := strconv.ParseUint(n, 0, 64)
	if err != nil {
		t.Fatalf("interrupt target %q: %v", target, err)
	}
	return ctl, v
}

// register is one check: a firmware expression must equal the address (or, with attr,
// the property) of a peripheral of the resolved platform; with irq, it must be one of
// the interrupt lines the peripheral raises on that controller.
type register struct {
	expr, peripheral, attr, irq string
}

// firmwareRegisters lists, per board, the addresses the firmware writes and the
// peripheral of the platform (Renode's model) that must answer there.
var firmwareRegisters = map[string][]register{
	"nrf52840-nano33ble": {
		{expr: "UARTE0", peripheral: "uart0"},
		{expr: "UARTE0_IRQ", peripheral: "uart0", irq: "nvic"},
		{expr: "CLOCK", peripheral: "clock"},
		{expr: "WDT", peripheral: "wdt"},
		// The ports' registers the firmware touches start at OUT = base + 0x504; the
		// model maps OUT at its own + 0x004.
		{expr: "GPIO_P0 + GPIO_OUTSET - 0x8", peripheral: "gpio0"},
		{expr: "GPIO_P1 + GPIO_OUTSET - 0x8", peripheral: "gpio1"},
		{expr: "GPIO_P0 + GPIO_PIN_CNF(0) - 0x200", peripheral: "gpio0"},
		{expr: "CORE_HZ", peripheral: "nvic", attr: "systickFrequency"},
	},
	"arduino-uno-r4": {
		{expr: "SCI2", peripheral: "sci2"},
		{expr: "EVENT_SCI2_RXI", peripheral: "sci2", irq: "icu"},
		{expr: "ICU_IELSR(0) - 0x300", peripheral: "icu"},
		{expr: "PORT(UART_RX_PORT)", peripheral: "port3"},
		{expr: "PORT(LED_PORT)", peripheral: "port1"},
		{expr: "PFS(UART_RX_PORT, 0)", peripheral: "port3", attr: "pinConfiguration"},
		{expr: "PFS(LED_PORT, 0)", peripheral: "port1", attr: "pinConfiguration"},
		{expr: "PWPR - 3", peripheral: "portMisc"},
		{expr: "SYS_OSCSF", peripheral: "sysc_oscsf"},
		{expr: "CORE_HZ", peripheral: "nvic", attr: "systickFrequency"},
	},
}

// ledPins names, per board, the firmware's macros for the user LED's port and pin.
var ledPins = map[string][2]string{
	"nrf52840-nano33ble": {"LED_PORT", "LED_PIN"},
	"arduino-uno-r4":     {"LED_PORT", "LED_PIN"},
}

// TestFirmwareMatchesPlatforms checks, without Renode, that each Renode-run board's
// platform (its file resolved over the recorded Renode CPU file it includes) has the
// peripherals the board's firmware drives where the firmware drives them, the
// interrupt lines it links, the clock its SysTick counts, its user LED, and the
// catalogue's CPU, LED count and memory.
func TestFirmwareMatchesPlatforms(t *testing.T) {
	for _, b := range boards.All() {
		if b.Emulator != boards.EmulatorRenode {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			checks, ok := firmwareRegisters[b.Name]
			if !ok {
				t.Fatalf("no firmware register checks for %s in this test", b.Name)
			}
			defs := defines(t, filepath.Join(testenv.RepoRoot(), "firmware", "boards", b.Name, "board.c"))
			d, err := platforms.Describe(b.RenodePlatform)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				got, err := eval(defs, c.expr)
				if err != nil {
					t.Errorf("firmware %s: %v", c.expr, err)
					continue
				}
				p := d[c.peripheral]
				if p == nil {
					t.Errorf("%s: no peripheral %s (firmware %s = %#x)", b.RenodePlatform, c.peripheral, c.expr, got)
					continue
				}
				switch {
				case c.irq != "":
					var lines []uint64
					for _, target := range p.IRQs {
						if ctl, n := irqNumber(t, target); ctl == c.irq {
							lines = append(lines, n)
						}
					}
					found := false
					for _, n := range lines {
						found = found || n == got
					}
					if !found {
						t.Errorf("firmware %s = %#x, but %s raises %s lines %#x", c.expr, got, c.peripheral, c.irq, lines)
					}
				case c.attr != "":
					want, err := strconv.ParseUint(p.Attrs[c.attr], 0, 64)
					if err != nil || want != got {
						t.Errorf("firmware %s = %#x (%d), %s.%s = %q", c.expr, got, got, c.peripheral, c.attr, p.Attrs[c.attr])
					}
				default:
					if !p.HasAddress || p.Address != got {
						t.Errorf("firmware %s = %#x, %s (%s) is at %#x", c.expr, got, c.peripheral, p.Type, p.Address)
					}
				}
			}

			// The user LED: on the firmware's port and pin, and as many as the catalogue says.
			led := ledPins[b.Name]
			port, err1 := eval(defs, led[0])
			pin, err2 := eval(defs, led[1])
			if err1 != nil || err2 != nil {
				t.Fatalf("firmware LED: %v %v", err1, err2)
			}
			var leds []*platforms.Peripheral
			for _, p := range d {
				if p.Type == "Miscellaneous.LED" {
					leds = append(leds, p)
				}
			}
			if len(leds) != b.LEDs {
				t.Errorf("%d LEDs in the platform, catalogue says %d", len(leds), b.LEDs)
			}
			if l := d["led"]; l == nil || !strings.HasSuffix(l.Parent, strconv.FormatUint(port, 10)) || l.Address != pin {
				t.Errorf("led = %+v, firmware drives port %d pin %d", l, port, pin)
			} else if gpio := d[l.Parent]; gpio == nil || !strings.Contains(strings.Join(gpio.IRQs, " "), fmt.Sprintf("led@0")) {
				t.Errorf("%s does not drive led@0: %+v", l.Parent, gpio)
			}

			// The catalogue's core: a Cortex-M4 with an FPU is Renode's cortex-m4f.
			wantCPU := `"` + b.CPU + `"`
			if b.FPU {
				wantCPU = `"` + b.CPU + `f"`
			}
			if cpu := d["cpu"]; cpu == nil || cpu.Attrs["cpuType"] != wantCPU {
				t.Errorf("cpu = %+v, catalogue says %s", cpu, wantCPU)
			}
		})
	}
}

// TestEvalDefines checks the #define evaluator on the shapes board.c files use.
func TestEvalDefines(t *testing.T) {
	defs := map[string]macro{
		"BASE":   {body: "0x40000000u"},
		"REG":    {body: "(BASE + 0x50cu)"},
		"PFS":    {params: []string{"port", "pin"}, body: "(0x40040800u + 0x40u * (uint32_t)(port) + 4u * (uint32_t)(pin))"},
		"SHIFTS": {body: "((1u << 28) | (3u << 4))"},
		"LOOP":   {body: "LOOP + 1"},
	}
	for _, tc := range []struct {
		expr string
		want uint64
		bad  bool
	}{
		{expr: "REG", want: 0x4000050c},
		{expr: "PFS(3, 1)", want: 0x400408c4},
		{expr: "SHIFTS", want: 1<<28 | 3<<4},
		{expr: "REG - 0x50c + 2 * 3", want: 0x40000006},
		{expr: "LOOP", bad: true},
		{expr: "PFS(1)", bad: true},
		{expr: "UNKNOWN", bad: true},
	} {
		got, err := eval(defs, tc.expr)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("eval(%s) = %#x, %v; want %#x (error %v)", tc.expr, got, err, tc.want, tc.bad)
		}
	}
}
