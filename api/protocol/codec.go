package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	eo.TagsMd = cbor.TagsForbidden
	var err error
	if encMode, err = eo.EncMode(); err != nil {
		panic("protocol: cbor encoder options: " + err.Error())
	}
	do := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  256,
		MaxMapPairs:       256,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorNone,
	}
	if decMode, err = do.DecMode(); err != nil {
		panic("protocol: cbor decoder options: " + err.Error())
	}
	// A top-level value sits one level down: it may nest one level less.
	do.MaxNestedLevels = maxNesting - 1
	if valueMode, err = do.DecMode(); err != nil {
		panic("protocol: cbor decoder options: " + err.Error())
	}
}

// maxNesting is how deep a body's items may nest, the top-level map included.
const maxNesting = 8

// valueMode checks one value of a body's top-level map (scanTop).
var valueMode cbor.DecMode

// New returns a new zero message of type t, or nil if t is unknown.
func New(t MessageType) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypeHeartbeat:
		return new(Heartbeat)
	case TypeHeartbeatAck:
		return new(HeartbeatAck)
	case TypeDeploy:
		return new(Deploy)
	case TypeDeployAck:
		return new(DeployAck)
	case TypeChunk:
		return new(Chunk)
	case TypeChunkAck:
		return new(ChunkAck)
	case TypeStart:
		return new(Start)
	case TypeStop:
		return new(Stop)
	case TypeRemove:
		return new(Remove)
	case TypeAppStatus:
		return new(AppStatus)
	case TypeTelemetry:
		return new(Telemetry)
	case TypeLog:
		return new(Log)
	case TypeError:
		return new(Error)
	}
	return nil
}

// Encode validates m and returns its CBOR body in Core Deterministic Encoding,
// with the message type under key 0.
func Encode(m Message) ([]byte, error) {
	return AppendEncode(nil, m)
}

// AppendEncode is like Encode but appends the body to dst.
func AppendEncode(dst []byte, m Message) ([]byte, error) {
	if m == nil || reflect.ValueOf(m).IsNil() {
		return dst, errors.New("encode: nil message")
	}
	t := m.Type()
	if err := m.Validate(); err != nil {
		return dst, fmt.Errorf("encode %s: %w", t, err)
	}
	fields, err := encMode.Marshal(m)
	if err != nil {
		return dst, fmt.Errorf("encode %s: %w", t, err)
	}
	// The struct encodes as a map whose keys start at 1; key 0 sorts first in
	// deterministic order, so the type goes right after a new map header.
	n, rest, ok := splitMapHeader(fields)
	if !ok {
		return dst, fmt.Errorf("encode %s: struct did not encode as a map", t)
	}
	dst = appendHead(dst, 0xa0, n+1)
	dst = append(dst, 0x00)
	dst = appendHead(dst, 0x00, uint64(t))
	return append(dst, rest...), nil
}

// splitMapHeader parses a definite map header and returns its pair count and
// the bytes after it.
func splitMapHeader(b []byte) (uint64, []byte, bool) {
	if len(b) == 0 || b[0]&0xe0 != 0xa0 {
		return 0, nil, false
	}
	info := b[0] & 0x1f
	switch {
	case info < 24:
		return uint64(info), b[1:], true
	case info == 24 && len(b) >= 2:
		return uint64(b[1]), b[2:], true
	case info == 25 && len(b) >= 3:
		return uint64(b[1])<<8 | uint64(b[2]), b[3:], true
	}
	return 0, nil, false
}

// appendHead appends a CBOR head of the given major type (already shifted)
// in its shortest form.
func appendHead(dst []byte, major byte, v uint64) []byte {
	switch {
	case v < 24:
		return append(dst, major|byte(v))
	case v <= 0xff:
		return append(dst, major|24, byte(v))
	case v <= 0xffff:
		return append(dst, major|25, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		return append(dst, major|26, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(dst, major|27, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// Decode parses a CBOR body strictly and returns the message it holds. Every
// failure is an *Error: CodeUnknownMessage for an unknown type, CodeMalformed
// for bad CBOR or a body of the wrong shape, CodeInvalidValue for a value out
// of range. Byte slices in the result never alias body.
func Decode(body []byte) (Message, error) {
	return decode(body, false)
}

// decode is Decode; with share, a Chunk's Data is body's bytes (DecodeShared).
func decode(body []byte, share bool) (Message, error) {
	top, fast := scanTop(body)
	if !fast {
		// Not a well-formed map of unique unsigned keys: the full decode says why.
		var m map[uint64]cbor.RawMessage
		if err := decMode.Unmarshal(body, &m); err != nil {
			return nil, newError(CodeMalformed, 0, describe(err), err)
		}
		top = fieldsOfMap(m)
	}
	rawType, ok := top.get(0)
	if !ok {
		return nil, NewError(CodeMalformed, 0, "missing key 0")
	}
	var tv uint64
	if len(rawType) == 1 && rawType[0] < 24 {
		tv = uint64(rawType[0]) // every type in its canonical form
	} else if err := decMode.Unmarshal(rawType, &tv); err != nil {
		return nil, newError(CodeMalformed, 0, "key 0 is not an unsigned integer", err)
	}
	if tv == 0 || tv > 0xff || New(MessageType(tv)) == nil {
		return nil, NewError(CodeUnknownMessage, 0, "unknown message type "+strconv.FormatUint(tv, 10))
	}
	t := MessageType(tv)
	m := New(t)
	v := reflect.ValueOf(m).Elem()
	if err := checkFields(top, v.Type()); err != nil {
		return nil, newError(CodeMalformed, t, describe(err), err)
	}
	if !fast || !decodeSimple(top, v, share && t == TypeChunk) {
		m = New(t)
		v = reflect.ValueOf(m).Elem()
		if err := decMode.Unmarshal(body, m); err != nil {
			return nil, newError(CodeMalformed, t, describe(err), err)
		}
		normalize(v)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// topFields are the key-value pairs of a message's top-level map, in body order; the
// values alias the body. A message has a handful of keys, so a scan beats a map.
type topFields []topField

type topField struct {
	key uint64
	raw []byte
}

func (f topFields) get(key uint64) ([]byte, bool) {
	for _, e := range f {
		if e.key == key {
			return e.raw, true
		}
	}
	return nil, false
}

func fieldsOfMap(m map[uint64]cbor.RawMessage) topFields {
	out := make(topFields, 0, len(m))
	for k, v := range m {
		out = append(out, topField{key: k, raw: v})
	}
	return out
}

// skipItem accepts any well-formed item without copying it (the library checks it
// before calling UnmarshalCBOR).
type skipItem struct{}

func (*skipItem) UnmarshalCBOR([]byte) error { return nil }

// scanTop splits body, a definite map of unique unsigned keys and nothing after it,
// into its pairs without copying the values; ok is false for anything else (Decode
// then decodes it the slow way to name the problem).
func scanTop(body []byte) (topFields, bool) {
	n, rest, ok := splitMapHeader(body)
	if !ok || n > 16 {
		return nil, false
	}
	out := make(topFields, 0, n)
	var skip skipItem
	for range n {
		if len(rest) == 0 || rest[0]&0xe0 != 0x00 {
			return nil, false
		}
		key, h, ok := cborHead(rest)
		if !ok {
			return nil, false
		}
		after := rest[h:]
		if _, dup := out.get(key); dup {
			return nil, false
		}
		size, ok := simpleItem(after)
		if !ok {
			next, err := valueMode.UnmarshalFirst(after, &skip)
			if err != nil {
				return nil, false
			}
			size = len(after) - len(next)
		}
		out = append(out, topField{key: key, raw: after[:size]})
		rest = after[size:]
	}
	if len(rest) != 0 {
		return nil, false
	}
	return out, true
}

// cborHead reads the head of the item b starts with: its argument (a value, a length)
// and the head's size. ok is false for a truncated head, an indefinite length and the
// reserved encodings, which the CBOR library refuses too.
func cborHead(b []byte) (arg uint64, size int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	info := b[0] & 0x1f
	if info < 24 {
		return uint64(info), 1, true
	}
	if info > 27 {
		return 0, 0, false
	}
	size = 1 + 1<<(info-24)
	if len(b) < size {
		return 0, 0, false
	}
	for _, c := range b[1:size] {
		arg = arg<<8 | uint64(c)
	}
	return arg, size, true
}

// simpleItem returns the size of the item b starts with when it is an integer or a
// definite byte or text string, the values of most fields: what the CBOR library's
// well-formedness check finds for them, without a call into it. ok is false for
// anything else, which the library checks.
func simpleItem(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	arg, h, ok := cborHead(b)
	if !ok {
		return 0, false
	}
	switch b[0] >> 5 {
	case 0, 1:
		return h, true
	case 2, 3:
		if arg > uint64(len(b)-h) {
			return 0, false
		}
		return h + int(arg), true
	}
	return 0, false
}

// decodeSimple sets v's fields from top, as the CBOR library would, when every field
// present is an unsigned integer in range of an unsigned field, a valid text string
// for a string, a byte string for a []byte (a copy, or with share body's bytes), or
// an empty array or map for a slice or map, and reports whether it did. Anything else (nested maps and arrays, another major
// type, an indefinite length) is left to the library with v discarded; FuzzDecodeSimple
// holds the two to the same results.
func decodeSimple(top topFields, v reflect.Value, share bool) bool {
	for _, f := range fieldsOf(v.Type()) {
		raw, ok := top.get(f.key)
		if !ok {
			continue
		}
		arg, h, ok := cborHead(raw)
		if !ok {
			return false
		}
		fv := v.Field(f.index)
		switch k := f.typ.Kind(); raw[0] >> 5 {
		case 0:
			if k < reflect.Uint || k > reflect.Uint64 || len(raw) != h || fv.OverflowUint(arg) {
				return false
			}
			fv.SetUint(arg)
		case 3:
			b := raw[h:]
			if k != reflect.String || uint64(len(b)) != arg || !utf8.Valid(b) {
				return false
			}
			fv.SetString(string(b))
		case 2:
			b := raw[h:]
			if f.typ != bytesType || uint64(len(b)) != arg {
				return false
			}
			switch {
			case len(b) == 0: // nil, as normalize leaves it
			case share:
				fv.SetBytes(b[:len(b):len(b)])
			default:
				fv.SetBytes(bytes.Clone(b))
			}
		case 4, 5:
			// An empty array for a slice, an empty map for a map: nil, as normalize
			// leaves it (Deploy's config).
			if arg != 0 || len(raw) != h || (raw[0]>>5 == 4) != (k == reflect.Slice) || (raw[0]>>5 == 5) != (k == reflect.Map) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

var bytesType = reflect.TypeFor[[]byte]()

// fieldInfo describes one keyed field of a message struct.
type fieldInfo struct {
	key      uint64
	required bool
	typ      reflect.Type
	index    int
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func fieldsOf(t reflect.Type) []fieldInfo {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]fieldInfo)
	}
	var fields []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("cbor")
		if !ok || !sf.IsExported() {
			continue
		}
		parts := strings.Split(tag, ",")
		key, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil {
			continue
		}
		fields = append(fields, fieldInfo{
			key:      key,
			required: !strings.Contains(tag, "omitempty"),
			typ:      sf.Type,
			index:    i,
		})
	}
	fieldCache.Store(t, fields)
	return fields
}

// checkFields enforces what the CBOR library does not: every required key is
// present, no known key holds null or undefined, and nested maps follow the
// same rules. Keys must be unsigned integers.
func checkFields(m topFields, t reflect.Type) error {
	for _, f := range fieldsOf(t) {
		raw, ok := m.get(f.key)
		if !ok {
			if f.required {
				return &fieldError{path: "key " + strconv.FormatUint(f.key, 10), err: errors.New("missing")}
			}
			continue
		}
		if err := checkValue(raw, f.typ); err != nil {
			return &fieldError{path: "key " + strconv.FormatUint(f.key, 10), err: err}
		}
	}
	return nil
}

func checkValue(raw []byte, t reflect.Type) error {
	if len(raw) == 1 && (raw[0] == 0xf6 || raw[0] == 0xf7) {
		return errors.New("null value")
	}
	switch t.Kind() {
	case reflect.Struct:
		var m map[uint64]cbor.RawMessage
		if err := decMode.Unmarshal(raw, &m); err != nil {
			return err
		}
		return checkFields(fieldsOfMap(m), t)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var items []cbor.RawMessage
		if err := decMode.Unmarshal(raw, &items); err != nil {
			return err
		}
		for i, it := range items {
			if err := checkValue(it, t.Elem()); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
	case reflect.Map:
		var entries map[string]cbor.RawMessage
		if err := decMode.Unmarshal(raw, &entries); err != nil {
			return err
		}
		for k, e := range entries {
			if err := checkValue(e, t.Elem()); err != nil {
				return fmt.Errorf("entry %q: %w", truncate(k, 16), err)
			}
		}
	}
	return nil
}

// normalize turns empty slices and maps into nil so that a decoded message
// compares equal to one built with zero values.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := 0; i < v.Len(); i++ {
				normalize(v.Index(i))
			}
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.SetZero()
		}
	}
}

// fieldError locates a problem found by checkFields.
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// describe turns a CBOR library error into a short phrase fit for the wire.
func describe(err error) string {
	var (
		fe    *fieldError
		dup   *cbor.DupMapKeyError
		extra *cbor.ExtraneousDataError
		typ   *cbor.UnmarshalTypeError
		syn   *cbor.SyntaxError
		sem   *cbor.SemanticError
		indef *cbor.IndefiniteLengthError
		tag   *cbor.TagsMdError
		lim   *cbor.MaxArrayElementsError
		limm  *cbor.MaxMapPairsError
		nest  *cbor.MaxNestedLevelError
	)
	prefix := ""
	if errors.As(err, &fe) {
		prefix = fe.path + ": "
		err = fe.err
	}
	switch {
	case errors.As(err, &dup):
		return prefix + "duplicate key"
	case errors.As(err, &extra):
		return prefix + "trailing bytes"
	case errors.As(err, &indef):
		return prefix + "indefinite length"
	case errors.As(err, &tag):
		return prefix + "tag not allowed"
	case errors.As(err, &lim), errors.As(err, &limm), errors.As(err, &nest):
		return prefix + "too many items"
	case errors.As(err, &typ):
		return prefix + "wrong type"
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return prefix + "truncated or bad cbor"
	case errors.As(err, &sem):
		return prefix + "bad cbor"
	}
	if prefix != "" {
		return prefix + err.Error()
	}
	return "bad cbor"
}
