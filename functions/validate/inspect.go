package validate

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// moduleInfo is what the validator needs from a module's binary that wazero does not
// expose: its memory declaration and how much of it the module really uses at start.
type moduleInfo struct {
	hasMemory      bool
	minPages       uint32
	maxPages       uint32 // valid when hasMax
	hasMax         bool
	dataEnd        uint64 // end of the highest active data segment
	highestI32Init uint32 // highest i32.const global initializer (C's stack pointer)
	tableMin       uint32 // the largest minimum size of a table the module defines
}

// usedBytes estimates the linear memory the module touches at start: its data and, for
// toolchains that place the stack below a global stack pointer, the stack. It is a
// lower bound the firmware enforces with bounds checks at run time.
func (m moduleInfo) usedBytes() uint64 {
	used := m.dataEnd
	declared := uint64(m.minPages) * 65536
	if g := uint64(m.highestI32Init); g > used && g <= declared {
		used = g
	}
	return used
}

var errTruncated = errors.New("truncated")

// reader walks a WebAssembly binary; every read is bounds-checked.
type reader struct {
	b   []byte
	off int
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i == 4 && c > 0x0f {
				return 0, errors.New("integer too large")
			}
			return v, nil
		}
	}
	return 0, errors.New("integer representation too long")
}

// s32 reads a signed LEB128 of at most 5 bytes.
func (r *reader) s32() (int32, error) {
	var v int64
	var shift uint
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if c&0x40 != 0 && shift < 64 {
				v |= -1 << shift
			}
			if v < -1<<31 || v > 1<<31-1 {
				return 0, errors.New("integer too large")
			}
			return int32(v), nil
		}
	}
	return 0, errors.New("integer representation too long")
}

func (r *reader) skip(n uint32) error {
	if uint64(r.off)+uint64(n) > uint64(len(r.b)) {
		return errTruncated
	}
	r.off += int(n)
	return nil
}

// constI32 reads a constant expression "i32.const N end"; ok is false for any other
// expression (the caller then stops reading that section).
func (r *reader) constI32() (v int32, ok bool, err error) {
	op, err := r.byte()
	if err != nil || op != 0x41 {
		return 0, false, err
	}
	if v, err = r.s32(); err != nil {
		return 0, false, err
	}
	end, err := r.byte()
	if err != nil || end != 0x0b {
		return 0, false, err
	}
	return v, true, nil
}

// inspect reads the memory, global and data sections of a module. It never panics on
// any input; a module that is not WebAssembly is an error.
func inspect(b []byte) (moduleInfo, error) {
	var info moduleInfo
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return info, errors.New("not a WebAssembly module (no \\0asm magic)")
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != 1 {
		return info, fmt.Errorf("WebAssembly binary version %d, want 1", v)
	}
	r := &reader{b: b, off: 8}
	for r.off < len(b) {
		id, err := r.byte()
		if err != nil {
			return info, err
		}
		size, err := r.u32()
		if err != nil {
			return info, fmt.Errorf("section %d size: %w", id, err)
		}
		start := r.off
		if err := r.skip(size); err != nil {
			return info, fmt.Errorf("section %d: %w", id, err)
		}
		sec := &reader{b: b[start : start+int(size)]}
		switch id {
		case 4:
			err = info.readTables(sec)
		case 5:
			err = info.readMemory(sec)
		case 6:
			err = info.readGlobals(sec)
		case 11:
			err = info.readData(sec)
		}
		if err != nil {
			return info, fmt.Errorf("section %d: %w", id, err)
		}
	}
	return info, nil
}

func (m *moduleInfo) readTables(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		if _, err := r.byte(); err != nil { // element type
			return err
		}
		flags, err := r.byte()
		if err != nil {
			return err
		}
		lo, err := r.u32()
		if err != nil {
			return err
		}
		m.tableMin = max(m.tableMin, lo)
		if flags&1 != 0 {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *moduleInfo) readMemory(r *reader) error {
	n, err := r.u32()
	if err != nil || n == 0 {
		return err
	}
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if m.minPages, err = r.u32(); err != nil {
		return err
	}
	m.hasMemory = true
	if flags&1 != 0 {
		if m.maxPages, err = r.u32(); err != nil {
			return err
		}
		m.hasMax = true
	}
	return nil
}

func (m *moduleInfo) readGlobals(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		typ, err := r.byte()
		if err != nil {
			return err
		}
		if _, err := r.byte(); err != nil { // mutability
			return err
		}
		if typ != 0x7f { // not i32: its initializer is not read, nor the rest
			return nil
		}
		v, ok, err := r.constI32()
		if err != nil || !ok {
			return err
		}
		if uint32(v) > m.highestI32Init && v > 0 {
			m.highestI32Init = uint32(v)
		}
	}
	return nil
}

func (m *moduleInfo) readData(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		flags, err := r.u32()
		if err != nil {
			return err
		}
		if flags != 0 { // passive or explicit memory index: not WebAssembly 1.0
			return nil
		}
		off, ok, err := r.constI32()
		if err != nil || !ok {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		if err := r.skip(size); err != nil {
			return err
		}
		if end := uint64(uint32(off)) + uint64(size); end > m.dataEnd {
			m.dataEnd = end
		}
	}
	return nil
}
