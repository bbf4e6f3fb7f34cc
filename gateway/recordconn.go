package gateway

import (
	"net"
	"sync"
)

// recordConn is the connection under a session's TLS. While the session writes a
// batch of frames it holds the records crypto/tls writes and sends them in one write:
// crypto/tls writes each record with a system call of its own, and it cuts the first
// 128 KiB of a connection into small records (about 1.2 KiB, growing by as much per
// record), so that a module's chunks took six writes instead of one.
type recordConn struct {
	net.Conn

	mu   sync.Mutex
	held *[]byte // the records held while a batch is written, nil otherwise
}

// Write sends p, or holds it while a batch is written.
func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil {
		*c.held = append(*c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// hold makes Write keep records in buf until release. Records that other goroutines
// write meanwhile (a close alert) join them in the order crypto/tls wrote them.
func (c *recordConn) hold(buf *[]byte) {
	c.mu.Lock()
	c.held = buf
	c.mu.Unlock()
}

// release writes the records held in one write and stops holding; the buffer is the
// caller's again, emptied.
func (c *recordConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.held
	c.held = nil
	if b == nil || len(*b) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*b)
	*b = (*b)[:0]
	return err
}

// Close writes the records held, best effort, then closes the connection: a protocol
// Error that a closing session wrote while a batch was being written (a framing error
// found by the read loop) is sent after the batch's records rather than lost. The
// write deadline of whoever wrote last bounds it.
func (c *recordConn) Close() error {
	c.mu.Lock()
	if c.held != nil && len(*c.held) > 0 {
		_, _ = c.Conn.Write(*c.held)
		*c.held = (*c.held)[:0]
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
