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
	// Extends is set on an entry "name:" that adds properties or interrupt lines to a
	// peripheral of an included file (using); Type, Parent and Address are then empty.
	Extends bool
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
	replHeadRe  = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*):(?:\s+([A-Za-z_][A-Za-z0-9_.]*)\s+@\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+(0x[0-9A-Fa-f]+|[0-9]+))?)?\s*$`)
	replAttrRe  = regexp.MustCompile(`^    ([A-Za-z_][A-Za-z0-9_]*):\s+(\S.*)$`)
	replIRQRe   = regexp.MustCompile(`^    (?:([A-Za-z_][A-Za-z0-9_]*|[0-9]+)\s+)?->\s+([A-Za-z_][A-Za-z0-9_]*)@(0x[0-9A-Fa-f]+|[0-9]+)\s*$`)
	replTypeRe  = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*\.[A-Za-z0-9_]+$`)
	replUsingRe = regexp.MustCompile(`^using "([^"]+)"\s*$`)
)

// File is a parsed platform description: the files it includes ("using" lines) and
// its own entries.
type File struct {
	Using   []string
	Entries Description
}

// Parse reads a platform description in the layout this repository uses: a peripheral
// starts at column 0 ("name: Type @ parent [address]", or "name:" to extend an earlier
// one), its properties and interrupt lines are indented by exactly four spaces, blank
// lines or comments separate entries. It returns the entries it understood and one
// error per line that breaks the layout, each prefixed with name:line. A file that
// includes others ("using") is read with ParseFile.
func Parse(name, text string) (Description, []error) {
	f, errs := ParseFile(name, text)
	if len(f.Using) > 0 {
		errs = append(errs, fmt.Errorf("%s: includes %v: read it with ParseFile or Describe", name, f.Using))
	}
	return f.Entries, errs
}

// ParseFile reads a platform description like Parse, and also "using" lines, which
// must come before any peripheral; in a file with them, "name:" may extend a
// peripheral of an included file (Peripheral.Extends).
func ParseFile(name, text string) (File, []error) {
	var f File
	d, errs := parse(name, text, &f.Using)
	f.Entries = d
	return f, errs
}

func parse(name, text string, using *[]string) (Description, []error) {
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
		if m := replUsingRe.FindStringSubmatch(line); m != nil {
			if len(d) > 0 {
				bad(n, "using after a peripheral")
			}
			*using = append(*using, m[1])
			cur = nil
			continue
		}
		if !strings.HasPrefix(line, " ") {
			m := replHeadRe.FindStringSubmatch(line)
			if m == nil {
				bad(n, "not a peripheral head: %q", line)
				cur = nil
				continue
			}
			if m[2] == "" { // "name:" extends an earlier entry, or an included one
				if cur = d[m[1]]; cur == nil && len(*using) > 0 {
					cur = &Peripheral{Name: m[1], Attrs: map[string]string{}, Line: n, Extends: true}
					d[m[1]] = cur
				} else if cur == nil {
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

// Describe parses the embedded platform description called platform (a .repl name) and
// resolves what it includes from Renode's CPU files, as recorded in RenodeCPUs: the
// result is the machine Renode would build, peripheral by peripheral. A file that
// breaks the layout, includes a file not recorded, defines a peripheral its includes
// define, or extends one they do not, is an error.
func Describe(platform string) (Description, error) {
	data, err := fs.ReadFile(files, platform)
	if err != nil {
		return nil, fmt.Errorf("renode platform %s: %w", platform, err)
	}
	f, errs := ParseFile(platform, string(data))
	if len(errs) > 0 {
		return nil, fmt.Errorf("renode platform %s: %w", platform, errs[0])
	}
	d, err := Resolve(f)
	if err != nil {
		return nil, fmt.Errorf("renode platform %s: %w", platform, err)
	}
	return d, nil
}

// Resolve returns the entries of f on top of those of the Renode CPU files it includes
// (RenodeCPUs): its own peripherals are added, and its extensions set properties and
// add interrupt lines of included ones.
func Resolve(f File) (Description, error) {
	d := Description{}
	for _, u := range f.Using {
		cpu, ok := RenodeCPUs[u]
		if !ok {
			return nil, fmt.Errorf("using %q: not a Renode CPU file recorded in this repository (renode_cpus.go)", u)
		}
		for _, p := range cpu.Peripherals {
			if d[p.Name] != nil {
				return nil, fmt.Errorf("using %q: %s defined twice", u, p.Name)
			}
			c := p
			c.Attrs = map[string]string{}
			for k, v := range p.Attrs {
				c.Attrs[k] = v
			}
			c.IRQs = append([]string(nil), p.IRQs...)
			c.Line = 0
			d[p.Name] = &c
		}
	}
	for name, p := range f.Entries {
		base := d[name]
		switch {
		case p.Extends && base == nil:
			return nil, fmt.Errorf("line %d: %q extends a peripheral no included file defines", p.Line, name)
		case !p.Extends && base != nil:
			return nil, fmt.Errorf("line %d: %q is already defined by an included file; extend it with %q", p.Line, name, name+":")
		case p.Extends:
			for k, v := range p.Attrs {
				base.Attrs[k] = v
			}
			base.IRQs = append(base.IRQs, p.IRQs...)
			base.Line = p.Line
		default:
			c := *p
			d[name] = &c
		}
	}
	return d, nil
}
