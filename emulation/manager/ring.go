package manager

import "sync"

// ring keeps the last bytes written to it, for an emulator's console output.
type ring struct {
	mu    sync.Mutex
	buf   []byte
	start int // index of the oldest byte once full
	full  bool
}

func newRing(size int) *ring { return &ring{buf: make([]byte, 0, size)} }

// Write appends p, dropping the oldest bytes beyond the capacity. It never fails.
func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	c := cap(r.buf)
	if c == 0 {
		return n, nil
	}
	if len(p) >= c {
		p = p[len(p)-c:]
		r.buf = append(r.buf[:0], p...)
		r.start, r.full = 0, true
		return n, nil
	}
	if !r.full {
		free := c - len(r.buf)
		if len(p) <= free {
			r.buf = append(r.buf, p...)
			return n, nil
		}
		r.buf = append(r.buf, p[:free]...)
		p = p[free:]
		r.full = true
	}
	for len(p) > 0 {
		k := copy(r.buf[r.start:], p)
		p = p[k:]
		r.start = (r.start + k) % c
	}
	return n, nil
}

// Bytes returns a copy of the kept bytes, oldest first.
func (r *ring) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]byte(nil), r.buf...)
	}
	out := make([]byte, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}
