package manager

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/wasmbed/wasmbed/api/protocol"
)

// uartReader reads whole frames from a board's UART. It checks each header (version,
// length against the current limit) before it allocates the body. After a framing error
// it hunts: it discards bytes until the start of a Hello frame, the first frame of a
// fresh session, and resumes there.
type uartReader struct {
	br      *bufio.Reader
	limit   atomic.Int64
	hunting bool // only touched by the reading goroutine
}

// helloPrefix is the canonical start of a Hello body: a map whose first key, 0, holds 1.
const helloMinBody = 3

func newUARTReader(r io.Reader) *uartReader {
	// Large enough to peek a whole Hello (at most DefaultMaxFrame) while hunting.
	u := &uartReader{br: bufio.NewReaderSize(r, protocol.HeaderSize+protocol.HardMaxFrame)}
	u.limit.Store(protocol.DefaultMaxFrame)
	return u
}

// setLimit sets the body limit of the frames the board may send.
func (u *uartReader) setLimit(n int) { u.limit.Store(int64(n)) }

// frameError is a framing error on the UART: the stream is out of sync.
type frameError struct{ err *protocol.Error }

func (e *frameError) Error() string { return "uart framing: " + e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }

// next returns the next frame, header included, in a new slice. A *frameError reports a
// framing error; the reader then hunts for the next Hello on the following call. Other
// errors are the connection's.
func (u *uartReader) next() ([]byte, error) {
	if u.hunting {
		return u.hunt()
	}
	hdr, err := u.br.Peek(protocol.HeaderSize)
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	limit := int(u.limit.Load())
	n := int(hdr[1])<<8 | int(hdr[2])
	var perr *protocol.Error
	switch {
	case hdr[0] != protocol.Version:
		perr = protocol.NewError(protocol.CodeUnsupportedVersion, 0, "version "+strconv.Itoa(int(hdr[0])))
	case n == 0:
		perr = protocol.NewError(protocol.CodeMalformed, 0, "empty frame")
	case n > limit:
		perr = protocol.NewError(protocol.CodeFrameTooLarge, 0, "frame of "+strconv.Itoa(n)+" bytes, limit "+strconv.Itoa(limit))
	}
	if perr != nil {
		// Skip the first byte only: a Hello may start inside the bad header.
		_, _ = u.br.Discard(1)
		u.hunting = true
		return nil, &frameError{perr}
	}
	frame := make([]byte, protocol.HeaderSize+n)
	if _, err := io.ReadFull(u.br, frame); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read uart frame: %w", err)
	}
	return frame, nil
}

// hunt discards bytes until a complete Hello frame is at the front of the stream, and
// returns it. A candidate is a version-1 header with a length within DefaultMaxFrame
// whose body starts like a Hello map; it is accepted only if the whole body decodes as
// a Hello.
func (u *uartReader) hunt() ([]byte, error) {
	for {
		b, err := u.br.Peek(protocol.HeaderSize + helloMinBody)
		if err != nil {
			return nil, err
		}
		n := int(b[1])<<8 | int(b[2])
		if b[0] == protocol.Version && n >= helloMinBody && n <= protocol.DefaultMaxFrame &&
			b[3] >= 0xa1 && b[3] <= 0xb7 && b[4] == 0x00 && b[5] == byte(protocol.TypeHello) {
			whole, err := u.br.Peek(protocol.HeaderSize + n)
			if err != nil {
				return nil, err
			}
			if m, err := protocol.Decode(whole[protocol.HeaderSize:]); err == nil && m.Type() == protocol.TypeHello {
				frame := append([]byte(nil), whole...)
				_, _ = u.br.Discard(len(frame))
				u.hunting = false
				return frame, nil
			}
		}
		_, _ = u.br.Discard(1)
	}
}

// frameType returns the message type of a frame from key 0 of its body, without
// decoding the rest when the body is canonical.
func frameType(frame []byte) protocol.MessageType {
	body := frame[protocol.HeaderSize:]
	if len(body) >= 3 && body[0] >= 0xa1 && body[0] <= 0xb7 && body[1] == 0x00 && body[2] < 24 {
		return protocol.MessageType(body[2])
	}
	if m, err := protocol.Decode(body); err == nil {
		return m.Type()
	}
	return 0
}
