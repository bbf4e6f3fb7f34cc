package protocol

// DecodeShared is Decode for a receiver that is done with a Chunk before it reads the
// next frame: a Chunk's Data shares body's bytes instead of being a copy of them. A
// device hashing and storing chunks as they arrive (docs/protocol.md §6) then copies
// each chunk's bytes once, into its store, rather than twice. Every other message, and
// every error, is exactly Decode's.
func DecodeShared(body []byte) (Message, error) {
	return decode(body, true)
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
