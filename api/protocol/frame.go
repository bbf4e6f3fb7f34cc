package protocol

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// clampLimit maps a requested body limit to the allowed range; zero or less
// means DefaultMaxFrame.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultMaxFrame
	case n > HardMaxFrame:
		return HardMaxFrame
	}
	return n
}

// checkHeader validates a frame header against a body limit and returns the
// body length. Its errors are *Error values with CodeUnsupportedVersion,
// CodeFrameTooLarge or CodeMalformed (empty body).
func checkHeader(h []byte, limit int) (int, error) {
	if h[0] != Version {
		return 0, NewError(CodeUnsupportedVersion, 0, "version "+strconv.Itoa(int(h[0])))
	}
	n := int(h[1])<<8 | int(h[2])
	if n == 0 {
		return 0, NewError(CodeMalformed, 0, "empty frame")
	}
	if n > limit {
		return 0, NewError(CodeFrameTooLarge, 0, "frame of "+strconv.Itoa(n)+" bytes, limit "+strconv.Itoa(limit))
	}
	return n, nil
}

// Reader reads frames from a byte stream. It checks each header against its
// body limit before it allocates or reads the body. A Reader is not safe for
// concurrent use.
type Reader struct {
	r     io.Reader
	limit int
	hdr   [HeaderSize]byte
	buf   []byte
}

// NewReader returns a Reader with the given body limit; zero means
// DefaultMaxFrame and anything above HardMaxFrame is clamped.
func NewReader(r io.Reader, maxBody int) *Reader {
	return &Reader{r: r, limit: clampLimit(maxBody)}
}

// SetMaxBody changes the body limit, for example to Welcome.MaxFrame.
func (r *Reader) SetMaxBody(n int) { r.limit = clampLimit(n) }

// MaxBody returns the current body limit.
func (r *Reader) MaxBody() int { return r.limit }

// Reserve allocates the buffer for the largest body the current limit allows, as a
// device's static frame buffer: reads then allocate nothing until the limit grows.
func (r *Reader) Reserve() {
	if cap(r.buf) < r.limit {
		r.buf = make([]byte, r.limit)
	}
}

// ReadFrame reads one frame and returns its body, which stays valid until the
// next call. It returns io.EOF at a clean end of stream, an error wrapping
// io.ErrUnexpectedEOF for a truncated frame, and an *Error for a wrong version,
// an empty body or a body over the limit; after any error the stream cannot be
// resynchronised and the session must close.
func (r *Reader) ReadFrame() ([]byte, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read frame header: %w", err)
	}
	n, err := checkHeader(r.hdr[:], r.limit)
	if err != nil {
		return nil, err
	}
	if cap(r.buf) < n {
		// Round up so that a session settles on one buffer.
		r.buf = make([]byte, (n+255)&^255)
	}
	body := r.buf[:n]
	if _, err := io.ReadFull(r.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read frame body: %w", err)
	}
	return body, nil
}

// ReadMessage reads one frame and decodes its body. Decoding errors are
// *Error values; the stream stays in sync after them, so a session may answer
// with an Error message and go on.
func (r *Reader) ReadMessage() (Message, error) {
	body, err := r.ReadFrame()
	if err != nil {
		return nil, err
	}
	return Decode(body)
}

// Writer writes frames to a byte stream, each with a single Write call. It is
// safe for concurrent use.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	limit int
	buf   []byte
}

// NewWriter returns a Writer with the given body limit; zero means
// DefaultMaxFrame and anything above HardMaxFrame is clamped.
func NewWriter(w io.Writer, maxBody int) *Writer {
	return &Writer{w: w, limit: clampLimit(maxBody)}
}

// SetMaxBody changes the body limit, for example to Welcome.MaxFrame.
func (w *Writer) SetMaxBody(n int) {
	w.mu.Lock()
	w.limit = clampLimit(n)
	w.mu.Unlock()
}

// MaxBody returns the current body limit.
func (w *Writer) MaxBody() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.limit
}

// WriteFrame writes body as one frame. A body over the limit is refused with
// an *Error of CodeFrameTooLarge and nothing is written.
func (w *Writer) WriteFrame(body []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := checkBody(len(body), w.limit); err != nil {
		return err
	}
	w.buf = append(appendHeader(w.buf[:0], len(body)), body...)
	return w.flush()
}

// WriteMessage encodes m and writes it as one frame.
func (w *Writer) WriteMessage(m Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf, err := AppendEncode(append(w.buf[:0], Version, 0, 0), m)
	if err != nil {
		return err
	}
	w.buf = buf
	n := len(buf) - HeaderSize
	if err := checkBody(n, w.limit); err != nil {
		return fmt.Errorf("write %s: %w", m.Type(), err)
	}
	buf[1], buf[2] = byte(n>>8), byte(n)
	return w.flush()
}

func (w *Writer) flush() error {
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

func checkBody(n, limit int) error {
	if n == 0 {
		return NewError(CodeMalformed, 0, "empty frame")
	}
	if n > limit {
		return NewError(CodeFrameTooLarge, 0, "frame of "+strconv.Itoa(n)+" bytes, limit "+strconv.Itoa(limit))
	}
	return nil
}

func appendHeader(dst []byte, n int) []byte {
	return append(dst, Version, byte(n>>8), byte(n))
}

// EncodeFrame encodes m as a complete frame: header and body. It refuses a
// body larger than HardMaxFrame.
func EncodeFrame(m Message) ([]byte, error) {
	frame, err := AppendEncode(make([]byte, HeaderSize, 64), m)
	if err != nil {
		return nil, err
	}
	n := len(frame) - HeaderSize
	if err := checkBody(n, HardMaxFrame); err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	frame[0], frame[1], frame[2] = Version, byte(n>>8), byte(n)
	return frame, nil
}

// DecodeFrame decodes one complete frame held in b, which must contain
// exactly one frame, with a body no larger than maxBody (zero means
// DefaultMaxFrame).
func DecodeFrame(b []byte, maxBody int) (Message, error) {
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("decode frame header: %w", io.ErrUnexpectedEOF)
	}
	n, err := checkHeader(b[:HeaderSize], clampLimit(maxBody))
	if err != nil {
		return nil, err
	}
	switch body := b[HeaderSize:]; {
	case len(body) < n:
		return nil, fmt.Errorf("decode frame body: %w", io.ErrUnexpectedEOF)
	case len(body) > n:
		return nil, NewError(CodeMalformed, 0, "trailing bytes after frame")
	default:
		return Decode(body)
	}
}
