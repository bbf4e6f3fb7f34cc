package protocol

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"sync"
	"testing"
)

// countingReader counts the bytes consumed from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// oversizeHeader returns a stream that announces an n-byte body and then
// never ends, so a reader that trusted the header would read or allocate n.
func oversizeHeader(n int) io.Reader {
	return io.MultiReader(bytes.NewReader([]byte{Version, byte(n >> 8), byte(n)}), zeroes{})
}

type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestReaderRefusesBeforeReading(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		len   int
		want  ErrorCode
	}{
		{"over default", 0, DefaultMaxFrame + 1, CodeFrameTooLarge},
		{"over small limit", MinMaxFrame, MinMaxFrame + 1, CodeFrameTooLarge},
		{"max u16 over hard limit", HardMaxFrame * 10, 0xffff, CodeFrameTooLarge},
		{"empty", 0, 0, CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: oversizeHeader(tt.len)}
			r := NewReader(cr, tt.limit)
			_, err := r.ReadFrame()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
			if cr.n != HeaderSize {
				t.Fatalf("read %d bytes, want only the %d-byte header", cr.n, HeaderSize)
			}
		})
	}
}

func TestReaderNoAllocationBeforeLimitCheck(t *testing.T) {
	hdr := []byte{Version, 0xff, 0xff}
	src := bytes.NewReader(hdr)
	r := NewReader(src, DefaultMaxFrame)
	refuse := func() {
		src.Reset(hdr)
		if _, err := r.ReadFrame(); err == nil {
			t.Fatal("oversize frame accepted")
		}
	}
	// The only allocations are the small *Error and its text, never a body
	// buffer: fewer than 256 bytes per refused 65,535-byte frame.
	allocs := testing.AllocsPerRun(100, refuse)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 1000
	for i := 0; i < runs; i++ {
		refuse()
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun >= 256 {
		t.Fatalf("%d bytes in %v allocations per refused frame", perRun, allocs)
	}
	if r.buf != nil {
		t.Fatalf("a %d-byte buffer was allocated for a refused frame", cap(r.buf))
	}
}

func TestReaderSteadyStateDoesNotAllocate(t *testing.T) {
	frame, err := EncodeFrame(&Heartbeat{Seq: 1, Uptime: 2})
	if err != nil {
		t.Fatal(err)
	}
	src := bytes.NewReader(frame)
	r := NewReader(src, 0)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(frame)
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"clean eof", nil, io.EOF},
		{"eof in header", []byte{Version, 0}, io.ErrUnexpectedEOF},
		{"eof in body", []byte{Version, 0, 4, 0xa1, 0x00}, io.ErrUnexpectedEOF},
		{"wrong version", []byte{2, 0, 1, 0xa0}, CodeUnsupportedVersion},
		{"version zero", []byte{0, 0, 1, 0xa0}, CodeUnsupportedVersion},
		{"garbage body", []byte{Version, 0, 1, 0xff}, CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tt.in), 0).ReadMessage()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStreamOfMessages(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, HardMaxFrame)
	var want []Message
	for _, ex := range goldenExamples() {
		if err := w.WriteMessage(ex.msg); err != nil {
			t.Fatalf("%s: %v", ex.name, err)
		}
		want = append(want, ex.msg)
	}
	// A decoding error in the middle of the stream leaves it in sync.
	if err := w.WriteFrame([]byte{0xa1, 0x00, 0x18, 0x63}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessage(&Heartbeat{Seq: 9}); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf, HardMaxFrame)
	for i, m := range want {
		got, err := r.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("message %d = %#v, want %#v", i, got, m)
		}
	}
	if _, err := r.ReadMessage(); !errors.Is(err, CodeUnknownMessage) {
		t.Fatalf("error %v, want unknown message", err)
	}
	if got, err := r.ReadMessage(); err != nil || !reflect.DeepEqual(got, &Heartbeat{Seq: 9}) {
		t.Fatalf("after the error: %#v, %v", got, err)
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Fatalf("error %v, want io.EOF", err)
	}
}

func TestWriterLimit(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	if w.MaxBody() != DefaultMaxFrame {
		t.Fatalf("default limit %d", w.MaxBody())
	}
	big := &Chunk{App: "a", Data: make([]byte, DefaultMaxFrame)}
	if err := w.WriteMessage(big); !errors.Is(err, CodeFrameTooLarge) {
		t.Fatalf("error %v, want frame too large", err)
	}
	if err := w.WriteFrame(make([]byte, DefaultMaxFrame+1)); !errors.Is(err, CodeFrameTooLarge) {
		t.Fatalf("error %v, want frame too large", err)
	}
	if err := w.WriteFrame(nil); !errors.Is(err, CodeMalformed) {
		t.Fatalf("error %v, want malformed", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes written by refused frames", buf.Len())
	}
	w.SetMaxBody(HardMaxFrame * 4)
	if w.MaxBody() != HardMaxFrame {
		t.Fatalf("limit not clamped: %d", w.MaxBody())
	}
	if err := w.WriteMessage(big); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf, 0)
	if _, err := r.ReadFrame(); !errors.Is(err, CodeFrameTooLarge) {
		t.Fatalf("reader with default limit: %v", err)
	}
}

// writeCounter records the size of every Write call.
type writeCounter struct {
	mu     sync.Mutex
	writes []int
	buf    bytes.Buffer
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, len(p))
	return w.buf.Write(p)
}

func TestWriterOneWritePerFrameConcurrently(t *testing.T) {
	wc := &writeCounter{}
	w := NewWriter(wc, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := w.WriteMessage(&Telemetry{App: "a", Topic: "t", Payload: make([]byte, 100)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(wc.writes) != 400 {
		t.Fatalf("%d writes for 400 frames", len(wc.writes))
	}
	r := NewReader(&wc.buf, 0)
	for i := 0; i < 400; i++ {
		if _, err := r.ReadMessage(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
}

func TestDecodeFrameLimit(t *testing.T) {
	frame, err := EncodeFrame(&Chunk{App: "a", Data: make([]byte, 3000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeFrame(frame, 0); !errors.Is(err, CodeFrameTooLarge) {
		t.Fatalf("error %v, want frame too large", err)
	}
	if _, err := DecodeFrame(frame, 4096); err != nil {
		t.Fatal(err)
	}
}

func TestReaderReserve(t *testing.T) {
	big, err := EncodeFrame(&Chunk{App: "a", Offset: 0, Data: make([]byte, MaxChunkSize(4096))})
	if err != nil {
		t.Fatal(err)
	}
	small, err := EncodeFrame(&Heartbeat{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		reserve bool
		want    float64 // allocations: the Reader, then its buffers
	}{
		{"without Reserve each larger frame grows the buffer", false, 3},
		{"with Reserve one buffer, before any read", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src bytes.Reader
			got := testing.AllocsPerRun(10, func() {
				r := NewReader(&src, 4096)
				if tt.reserve {
					r.Reserve()
				}
				for _, f := range [][]byte{small, big} {
					src.Reset(f)
					if _, err := r.ReadFrame(); err != nil {
						t.Fatal(err)
					}
				}
			})
			if got != tt.want {
				t.Fatalf("%v allocations, want %v", got, tt.want)
			}
		})
	}
}
