package protocol

import (
	"errors"
	"reflect"
)

// DecodeShared is Decode for a receiver that is done with a Chunk before it reads the
// next frame: a Chunk's Data shares body's bytes instead of being a copy of them. A
// device hashing and storing chunks as they arrive (docs/protocol.md §6) then copies
// each chunk's bytes once, into its store, rather than twice. Every other message, and
// every error, is exactly Decode's.
func DecodeShared(body []byte) (Message, error) {
	if c := decodeChunkShared(body); c != nil {
		return c, nil
	}
	return Decode(body)
}

// ReadMessageShared reads one frame and decodes it with DecodeShared: a Chunk's Data
// is valid until the next read.
func (r *Reader) ReadMessageShared() (Message, error) {
	body, err := r.ReadFrame()
	if err != nil {
		return nil, err
	}
	return DecodeShared(body)
}

// sharedChunk is Chunk with Data decoded in place.
type sharedChunk struct {
	App    string      `cbor:"1,keyasint"`
	Offset uint32      `cbor:"2,keyasint"`
	Data   sharedBytes `cbor:"3,keyasint"`
}

// sharedBytes takes a definite byte string's content without copying it; anything else
// is an error, and DecodeShared leaves the body to Decode.
type sharedBytes []byte

var errNotByteString = errors.New("not a definite byte string")

// UnmarshalCBOR slices the content out of data, a well-formed item the CBOR library
// checked, which stays the caller's body.
func (b *sharedBytes) UnmarshalCBOR(data []byte) error {
	if len(data) == 0 || data[0]>>5 != 2 {
		return errNotByteString
	}
	head := 1
	switch info := data[0] & 0x1f; {
	case info < 24:
	case info <= 27:
		head += 1 << (info - 24)
	default: // indefinite length or reserved
		return errNotByteString
	}
	if len(data) < head {
		return errNotByteString
	}
	*b = data[head:len(data):len(data)]
	return nil
}

var chunkType = reflect.TypeFor[Chunk]()

// decodeChunkShared decodes body as DecodeShared does when it is a valid Chunk whose
// type is encoded canonically and whose data is a byte string, and returns nil
// otherwise: every other body, valid or not, goes through Decode.
func decodeChunkShared(body []byte) *Chunk {
	top, ok := scanTop(body)
	if !ok {
		return nil
	}
	if t, ok := top.get(0); !ok || len(t) != 1 || t[0] != byte(TypeChunk) {
		return nil
	}
	if checkFields(top, chunkType) != nil {
		return nil
	}
	var s sharedChunk
	if decMode.Unmarshal(body, &s) != nil {
		return nil
	}
	c := &Chunk{App: s.App, Offset: s.Offset, Data: s.Data}
	if c.Validate() != nil {
		return nil
	}
	return c
}
