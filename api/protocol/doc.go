// Package protocol implements the Wasmbed device protocol: the framed CBOR
// messages a gateway and a device exchange over one mutual-TLS session (or a
// UART bridged by a board manager).
//
// A frame is a 3-byte header (version, body length as big-endian uint16)
// followed by a CBOR body. The body is a map with small unsigned integer keys;
// key 0 holds the MessageType. Bodies are encoded with CBOR Core Deterministic
// Encoding, so the Go gateway and the C firmware produce the same bytes for the
// same message; the golden frames in testdata/protocol pin that contract.
// docs/protocol.md is the normative specification.
//
// Decoding is strict: duplicate keys, indefinite lengths, tags, null values,
// wrong types, missing required keys and unknown message types are refused
// with a typed *Error. Unknown extra keys are ignored for forward
// compatibility.
package protocol
