package protocol

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// addGoldenSeeds adds every golden frame (valid, lenient and invalid) to the
// seed corpus, as a whole frame or as a body.
func addGoldenSeeds(f *testing.F, body bool) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.bin"))
	more, _ := filepath.Glob(filepath.Join(goldenDir, "*", "*.bin"))
	for _, p := range append(files, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if body && len(b) >= HeaderSize {
			b = b[HeaderSize:]
		}
		f.Add(b)
	}
}

// checkStable asserts the fuzzing property: anything that decodes encodes
// again, and the encoding decodes to the same value and is a fixed point.
func checkStable(t *testing.T, m Message) {
	body, err := Encode(m)
	if err != nil {
		t.Fatalf("decoded %#v but cannot encode it: %v", m, err)
	}
	again, err := Decode(body)
	if err != nil {
		t.Fatalf("re-encoded body %x does not decode: %v", body, err)
	}
	if !reflect.DeepEqual(again, m) {
		t.Fatalf("round trip changed the value:\n%#v\n%#v", m, again)
	}
	body2, err := Encode(again)
	if err != nil || string(body2) != string(body) {
		t.Fatalf("encoding is not deterministic: %x then %x (%v)", body, body2, err)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	addGoldenSeeds(f, false)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeFrame(b, HardMaxFrame)
		if err != nil {
			return
		}
		checkStable(t, m)
		frame, err := EncodeFrame(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeFrame(frame, HardMaxFrame); err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	addGoldenSeeds(f, true)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		checkStable(t, m)
	})
}

// FuzzScanTop: the fast split of a body's top-level map accepts only what the strict
// decoder accepts, with the same pairs.
func FuzzScanTop(f *testing.F) {
	addGoldenSeeds(f, true)
	f.Fuzz(func(t *testing.T, b []byte) {
		top, ok := scanTop(b)
		if !ok {
			return
		}
		var m map[uint64]cbor.RawMessage
		if err := decMode.Unmarshal(b, &m); err != nil {
			t.Fatalf("scanTop accepted what the decoder refuses: %v", err)
		}
		if len(m) != len(top) {
			t.Fatalf("scanTop found %d pairs, the decoder %d", len(top), len(m))
		}
		for _, e := range top {
			if !bytes.Equal(m[e.key], e.raw) {
				t.Fatalf("key %d: scanTop %x, decoder %x", e.key, e.raw, m[e.key])
			}
		}
	})
}

// FuzzDecodeManifest: any bytes are refused with an *Error or decode to a manifest that
// encodes canonically (never longer than the input) and decodes again to the same one.
func FuzzDecodeManifest(f *testing.F) {
	for _, m := range []*Manifest{goldenSensorHub()} {
		b, err := EncodeManifest(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		again, err := EncodeManifest(m)
		if err != nil || len(again) > len(b) {
			t.Fatalf("decoded manifest encodes to %d bytes (input %d): %v", len(again), len(b), err)
		}
		m2, err := DecodeManifest(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-decoded %+v, %v; want %+v", m2, err, m)
		}
	})
}

// addMessageSeeds seeds f with the golden vectors and the benchmark's messages.
func addMessageSeeds(f *testing.F) {
	addGoldenSeeds(f, true)
	for _, m := range benchMessages() {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeShared: DecodeShared returns what Decode returns, error for error, and a
// Chunk's Data lies inside the body.
func FuzzDecodeShared(f *testing.F) {
	addMessageSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		body := bytes.Clone(b)
		got, gerr := DecodeShared(body)
		want, werr := Decode(b)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("DecodeShared: %v, Decode: %v", gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeShared %+v, Decode %+v", got, want)
		}
		if c, ok := got.(*Chunk); ok {
			if canonical, err := Encode(c); err == nil && bytes.Equal(canonical, b) && !shares(body, c.Data) {
				t.Fatalf("the data of a canonical chunk is a copy")
			}
		}
	})
}

// shares reports whether data is the end of body, as a canonical Chunk's Data is: a
// change to body's last byte shows in data.
func shares(body, data []byte) bool {
	if len(body) == 0 || len(data) == 0 {
		return false
	}
	body[len(body)-1] ^= 0xff
	defer func() { body[len(body)-1] ^= 0xff }()
	return data[len(data)-1] == body[len(body)-1]
}

// FuzzDecodeSimple: whatever decodeSimple decodes, as any message type, the CBOR
// library decodes to the same message.
func FuzzDecodeSimple(f *testing.F) {
	addMessageSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		top, ok := scanTop(b)
		if !ok {
			return
		}
		for mt := MessageType(1); mt < 0xff; mt++ {
			fast := New(mt)
			if fast == nil {
				continue
			}
			if !decodeSimple(top, reflect.ValueOf(fast).Elem(), false) {
				continue
			}
			slow := New(mt)
			if err := decMode.Unmarshal(b, slow); err != nil {
				t.Fatalf("%s: decodeSimple took what the library refuses: %v", mt, err)
			}
			normalize(reflect.ValueOf(slow).Elem())
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%s: decodeSimple %+v, the library %+v", mt, fast, slow)
			}
		}
	})
}
