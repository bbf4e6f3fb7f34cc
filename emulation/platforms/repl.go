package platforms

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// Peripheral is one entry of a Renode platform description (.repl): a line
// "name: Type @ parent [address]", its indented properties and interrupt lines.
type Peripheral struct {
	Name, Type string
	// Parent is the registration point: "sysbus", or a peripheral such as a GPIO port.
	Parent string
	// Address is the registration address on the parent; HasAddress says whether the
	// entry gave one.
	Address    uint64
	HasAddress bool
	// Attrs holds the properties ("size: 0x40000" gives Attrs["size"] = "0x40000").
	Attrs map[string]string
	// IRQs are the targets of "->" lines, such as "nvic@2".
	IRQs []string
	// Line is where the entry starts in the file (1-based).
	Line int
}

// Size returns the entry's size property (memories), or an error when it has none.
func (p *Peripheral) Size() (uint64, error) {
	v, ok := p.Attrs["size"]
	if !ok {
		return 0, fmt.Errorf("%s: no size", p.Name)
	}
	n, err := strconv.ParseUint(v, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: size %q: %w", p.Name, v, err)
	}
	return n, nil
}

// Description is a parsed platform description, by peripheral name.
type Description map[string]*Peripheral

var (
	replHeadRe = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*):(?:\s+([A-Za-z_][A-Za-z0-9_.]*)\s+@\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+(0x[0-9A-Fa-f]+|[0-9]+))?)?\s*$`)
	replAttrRe = regexp.MustCompile(`^    ([A-Za-z_][A-Za-z0-9_]*):\s+(\S.*)$`)
	replIRQRe  = regexp.MustCompile(`^    (?:([A-Za-z_][A-Za-z0-9_]*|[0-9]+)\s+)?->\s+([A-Za-z_][A-Za-z0-9_]*)@([0-9]+)\s*$`)
	replTypeRe = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*\.[A-Za-z0-9_]+$`)
)

// Parse reads a platform description in the layout this repository uses: a peripheral
// starts at column 0 ("name: Type @ parent [address]", or "name:" to extend an earlier
// one), its properties and interrupt lines are indented by exactly four spaces, blank
// lines or comments separate entries. It returns the entries it understood and one
// error per line that breaks the layout, each prefixed with name:line.
func Parse(name, text string) (Description, []error) {
	d := Description{}
	var errs []error
	bad := func(n int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, n, fmt.Sprintf(format, args...)))
	}
	var cur *Peripheral
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			cur = nil
			continue
		case strings.HasPrefix(trimmed, "//"):
			if strings.HasPrefix(line, " ") {
				bad(n, "indented comment")
			}
			continue
		case strings.Contains(line, "\t"):
			bad(n, "tab in indentation")
			continue
		}
		if !strings.HasPrefix(line, " ") {
			m := replHeadRe.FindStringSubmatch(line)
			if m == nil {
				bad(n, "not a peripheral head: %q", line)
				cur = nil
				continue
			}
			if m[2] == "" { // "name:" extends an earlier entry
				if cur = d[m[1]]; cur == nil {
					bad(n, "%q extends an undefined peripheral", m[1])
				}
				continue
			}
			if d[m[1]] != nil {
				bad(n, "%q defined twice", m[1])
			}
			if !replTypeRe.MatchString(m[2]) {
				bad(n, "type %q is not Namespace.Class", m[2])
			}
			cur = &Peripheral{Name: m[1], Type: m[2], Parent: m[3], Attrs: map[string]string{}, Line: n}
			if m[4] != "" {
				v, err := strconv.ParseUint(m[4], 0, 64)
				if err != nil {
					bad(n, "address %q: %v", m[4], err)
				}
				cur.Address, cur.HasAddress = v, true
			}
			d[m[1]] = cur
			continue
		}
		if cur == nil {
			bad(n, "indented line outside a peripheral: %q", line)
			continue
		}
		if m := replIRQRe.FindStringSubmatch(line); m != nil {
			cur.IRQs = append(cur.IRQs, m[2]+"@"+m[3])
			continue
		}
		if m := replAttrRe.FindStringSubmatch(line); m != nil {
			cur.Attrs[m[1]] = m[2]
			continue
		}
		bad(n, "not a property or interrupt line (four spaces): %q", line)
	}
	return d, errs
}

// Describe parses the embedded platform description called platform (a .repl name).
// A file that breaks the layout is an error.
func Describe(platform string) (Description, error) {
	data, err := fs.ReadFile(files, platform)
	if err != nil {
		return nil, fmt.Errorf("renode platform %s: %w", platform, err)
	}
	d, errs := Parse(platform, string(data))
	if len(errs) > 0 {
		return nil, fmt.Errorf("renode platform %s: %w", platform, errs[0])
	}
	return d, nil
}
