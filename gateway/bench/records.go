package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// recordHeader is the size of a TLS record header: type, version, length.
const recordHeader = 5

// recordReader hands crypto/tls one TLS record at a time, as a device's TLS stack
// (mbedTLS) reads a record into a buffer of one record's size. Go's TLS client reads
// whatever has arrived and grows its input buffer to hold it: a 32 KiB module that
// arrived at once left 40 KiB per connection, allocated and zeroed during the fan-out,
// which measured the simulator rather than the server. Both servers' clients read
// through it. The socket is read into a pooled buffer, held only while it holds
// unread bytes, so the reads and their system calls are those of a plain connection.
type recordReader struct {
	net.Conn

	buf  *[]byte // unread bytes are (*buf)[r:w]; nil when there are none
	r, w int
	hdr  [recordHeader]byte // the header being read, hdrN bytes of it
	hdrN int
	body int // bytes of the current record's body not yet handed out
}

// readBufSize holds a few records of the largest size TLS allows.
const readBufSize = 64 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// Read returns bytes of the current record only: the rest of its header, or of its body.
func (c *recordReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.buf == nil {
		b := readBufs.Get().(*[]byte)
		n, err := c.Conn.Read(*b)
		if n <= 0 {
			readBufs.Put(b)
			return 0, err
		}
		c.buf, c.r, c.w = b, 0, n
	}
	avail := (*c.buf)[c.r:c.w]
	var n int
	if c.body > 0 {
		n = copy(p, avail[:min(len(avail), c.body)])
		c.body -= n
	} else {
		n = copy(p, avail[:min(len(avail), recordHeader-c.hdrN)])
		copy(c.hdr[c.hdrN:], p[:n])
		if c.hdrN += n; c.hdrN == recordHeader {
			c.body, c.hdrN = int(c.hdr[3])<<8|int(c.hdr[4]), 0
		}
	}
	if c.r += n; c.r == c.w {
		readBufs.Put(c.buf)
		c.buf = nil
	}
	return n, nil
}

// dialRecords dials the server and does the TLS handshake over a recordReader.
func dialRecords(tc *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", *addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := tls.Client(&recordReader{Conn: raw}, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return c, nil
}
