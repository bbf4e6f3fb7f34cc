package protocol

import (
	"bytes"
	"io"
	"testing"
)

func benchMessages() map[string]Message {
	return map[string]Message{
		"heartbeat": &Heartbeat{Seq: 123456, Uptime: 987654321},
		"chunk-1k":  &Chunk{App: "sensor-hub", Offset: 4096, Data: make([]byte, 1024)},
	}
}

func BenchmarkEncode(b *testing.B) {
	for name, m := range benchMessages() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = AppendEncode(buf[:0], m); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for name, m := range benchMessages() {
		body, err := Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriteReadFrame(b *testing.B) {
	for name, m := range benchMessages() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var buf bytes.Buffer
			w := NewWriter(&buf, HardMaxFrame)
			r := NewReader(&buf, HardMaxFrame)
			for b.Loop() {
				if err := w.WriteMessage(m); err != nil {
					b.Fatal(err)
				}
				if _, err := r.ReadMessage(); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeShared(b *testing.B) {
	for name, m := range map[string]Message{"chunk-8k": &Chunk{App: "sensor-hub", Offset: 8192, Data: make([]byte, 8192)}} {
		body, err := Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range []struct {
			name   string
			decode func([]byte) (Message, error)
		}{{"copy", Decode}, {"shared", DecodeShared}} {
			b.Run(name+"/"+d.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, err := d.decode(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
