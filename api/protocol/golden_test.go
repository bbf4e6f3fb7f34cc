package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata/protocol")

const goldenDir = "../../testdata/protocol"

// digest returns a recognisable 32-byte digest: b, b+1, b+2...
func digest(b byte) []byte {
	d := make([]byte, DigestSize)
	for i := range d {
		d[i] = b + byte(i)
	}
	return d
}

func seq(n int, start byte) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = start + byte(i)
	}
	return d
}

// goldenExample is one valid frame shared with the C firmware.
type goldenExample struct {
	name string
	note string
	msg  Message
}

func goldenExamples() []goldenExample {
	maxName := strings.Repeat("a", MaxAppNameLen)
	return []goldenExample{
		{"hello", "an STM32F407 device holding one running app", &Hello{
			DeviceID: "default/stm32-01", Board: "stm32f407-discovery", Firmware: "0.1.0",
			Caps: Capabilities{RAM: 196608, Flash: 1048576, MaxModule: 65536, ABI: 1, MaxFrame: 4096},
			Apps: []AppInfo{{Name: "blinky", Digest: digest(0x10), State: StateRunning}},
		}},
		{"hello_empty_apps", "the smallest board, no apps (empty array), smallest frame limit", &Hello{
			DeviceID: "lab/uno-r4", Board: "ra4m1-uno-r4", Firmware: "0.1.0",
			Caps: Capabilities{RAM: 32768, Flash: 262144, MaxModule: 16384, ABI: 1, MaxFrame: MinMaxFrame},
		}},
		{"hello_two_apps_unicode", "two apps, one partially received; unicode board name", &Hello{
			DeviceID: "default/nano-33", Board: "nRF52840 · Nano 33 BLE", Firmware: "1.2.3-rc.1+ü",
			Caps: Capabilities{RAM: 262144, Flash: 1048576, MaxModule: 131072, ABI: 1, MaxFrame: HardMaxFrame},
			Apps: []AppInfo{
				{Name: "sensor-hub", Digest: digest(0xa0), State: StateReceiving},
				{Name: "blinky", Digest: digest(0x10), State: StateStopped},
			},
		}},
		{"welcome", "default heartbeat, 2 KiB frames", &Welcome{
			SessionID: 0x0123456789abcdef, HeartbeatInterval: 30, HeartbeatTimeout: 90,
			ServerTime: 1767225600000, MaxFrame: DefaultMaxFrame,
		}},
		{"welcome_small", "smallest values Welcome allows", &Welcome{
			SessionID: 1, HeartbeatInterval: 1, HeartbeatTimeout: 2, ServerTime: 0, MaxFrame: MinMaxFrame,
		}},
		{"heartbeat", "", &Heartbeat{Seq: 42, Uptime: 123456}},
		{"heartbeat_zero", "zero values are encoded, not omitted", &Heartbeat{}},
		{"heartbeat_max", "largest integers: 4-byte and 8-byte heads", &Heartbeat{Seq: 0xffffffff, Uptime: 0xffffffffffffffff}},
		{"heartbeat_ack", "", &HeartbeatAck{Seq: 42, ServerTime: 1767225630000}},
		{"deploy", "two config entries: the shorter key sorts first", &Deploy{
			App: "blinky", Digest: digest(0x10), Size: 5000, ChunkSize: 1024,
			Config: map[string]string{"period_ms": "500", "led": "0"},
		}},
		{"deploy_signed", "signed: the manifest of golden manifest \"sensor_hub\" and its signature", goldenSignedDeploy()},
		{"deploy_empty_config", "empty config map", &Deploy{
			App: "sensor-hub", Digest: digest(0xa0), Size: 70000, ChunkSize: 8192,
		}},
		{"deploy_unicode_config", "unicode config keys and values, empty value, key order by encoded bytes", &Deploy{
			App: "x", Digest: digest(0), Size: 1, ChunkSize: 1,
			Config: map[string]string{"b": "", "a": "✓", "é": "çà", "zz": "1", "A": "grüße"},
		}},
		{"deploy_ack_fresh", "nothing held yet", &DeployAck{App: "blinky", Digest: digest(0x10), Offset: 0, Window: 4}},
		{"deploy_ack_resume", "resume after 3 chunks of 1024", &DeployAck{App: "blinky", Digest: digest(0x10), Offset: 3072, Window: 1}},
		{"chunk", "", &Chunk{App: "blinky", Offset: 1024, Data: seq(16, 0)}},
		{"chunk_max", "largest header (63-byte name, 5-byte offset, 3-byte data head): body is exactly DefaultMaxFrame", &Chunk{
			App: maxName, Offset: 0x00fff000, Data: seq(MaxChunkSize(DefaultMaxFrame), 0),
		}},
		{"chunk_ack", "", &ChunkAck{App: "blinky", Next: 2048}},
		{"chunk_ack_zero", "", &ChunkAck{App: "blinky", Next: 0}},
		{"start", "", &Start{App: "blinky"}},
		{"stop", "", &Stop{App: "blinky"}},
		{"remove", "longest app name", &Remove{App: maxName}},
		{"app_status_running", "", &AppStatus{
			App: "blinky", Digest: digest(0x10), State: StateRunning, Loops: 1000, Traps: 0, Fuel: 25000000,
		}},
		{"app_status_failed", "error text present", &AppStatus{
			App: "blinky", Digest: digest(0x10), State: StateFailed, Error: "fuel exhausted", Loops: 7, Traps: 1, Fuel: 7000000,
		}},
		{"app_status_received", "zero counters", &AppStatus{App: "blinky", Digest: digest(0x10), State: StateReceived}},
		{"telemetry", "", &Telemetry{App: "sensor-hub", Topic: "temperature", Payload: []byte{0x00, 0x00, 0x5b, 0x68}, Time: 1767225601234}},
		{"telemetry_empty_unicode", "empty payload, unknown time, unicode topic", &Telemetry{App: "sensor-hub", Topic: "température/°C"}},
		{"log_firmware", "no app: the firmware itself", &Log{Level: LevelInfo, Message: "wifi connected"}},
		{"log_app_unicode", "", &Log{Level: LevelWarn, App: "sensor-hub", Message: "温度 high ⚠ 42°C"}},
		{"log_empty", "debug level 0, empty message", &Log{Level: LevelDebug}},
		{"error", "all fields", &Error{Code: CodeBadOffset, Message: "expected offset 2048", Related: TypeChunk, App: "blinky"}},
		{"error_code_only", "optional fields omitted", &Error{Code: CodeBusy}},
	}
}

// invalidExample is a frame every implementation must refuse.
type invalidExample struct {
	name string
	note string
	hex  string
	// want is an error code name, or "truncated".
	want string
}

func invalidExamples() []invalidExample {
	return []invalidExample{
		{"wrong_version", "version byte 2", "020003a10003", "unsupported_version"},
		{"version_zero", "version byte 0", "000003a10003", "unsupported_version"},
		{"oversize", "length 2049 over the default limit: refused from the header alone", "010801", "frame_too_large"},
		{"empty_body", "length 0", "010000", "malformed"},
		{"truncated_header", "", "0100", "truncated"},
		{"truncated_body", "length 5, 2 bytes present", "010005a100", "truncated"},
		{"trailing_bytes_frame", "a byte after the frame", "010003a1000300", "malformed"},
		{"trailing_bytes_body", "a second CBOR item in the body", "010008 a3 0003 0100 0200 00", "malformed"},
		{"not_a_map", "empty array", "01000180", "malformed"},
		{"garbage", "", "010003ffffff", "malformed"},
		{"missing_type", "no key 0", "010003a10102", "malformed"},
		{"type_not_uint", "key 0 is text", "010004a1006161", "malformed"},
		{"unknown_type", "type 99", "010004a1001863", "unknown_message"},
		{"type_zero", "type 0 is reserved", "010003a10000", "unknown_message"},
		{"type_large", "type 256", "010005a100190100", "unknown_message"},
		{"duplicate_key", "heartbeat with key 1 twice", "010009a40003010101020200", "malformed"},
		{"duplicate_type_key", "key 0 twice", "010009 a4 0003 0003 0101 0200", "malformed"},
		{"missing_key", "heartbeat without key 2", "010005a200030101", "malformed"},
		{"wrong_type_text", "heartbeat seq as text", "010008a3000301613102" + "00", "malformed"},
		{"wrong_type_negative", "heartbeat seq -1", "010007a30003012002" + "00", "malformed"},
		{"overflow_uint32", "heartbeat seq 2^32", "01000f a3 0003 01 1b0000000100000000 0200", "malformed"},
		{"null_value", "heartbeat seq null", "010007a3000301f60200", "malformed"},
		{"undefined_value", "heartbeat seq undefined", "010007a3000301f70200", "malformed"},
		{"float_value", "heartbeat seq 1.0 as half float", "010009a3000301f93c000200", "malformed"},
		{"text_key", "text key \"1\"", "010008a300036131010200", "malformed"},
		{"negative_key", "key -1", "010007a30003200102" + "00", "malformed"},
		{"indefinite_map", "", "010008bf000301010200ff", "malformed"},
		{"indefinite_bytes", "chunk data as an indefinite byte string", "01000d a4 0007 01 6161 0200 03 5f41aaff", "malformed"},
		{"tagged_value", "tag 0 on the app name", "010007 a2 0009 01 c0 6161", "malformed"},
		{"invalid_utf8", "start with app name 0xff", "010006 a2 0009 01 61ff", "malformed"},
		{"bytes_for_text", "start with app name as a byte string", "010006 a2 0009 01 4161", "malformed"},
		{"text_for_bytes", "chunk data as text", "01000b a4 0007 01 6161 0200 03 6161", "malformed"},
		{"nested_missing_key", "hello whose app lacks its state", helloBadApp(), "malformed"},
		{"invalid_app_name", "upper case in an app name", "010008 a2 0009 01 6341425f", "invalid_value"},
		{"short_digest", "app-status with a 1-byte digest", "010011 a7 000c 01 6161 02 41aa 0303 0500 0600 0700", "invalid_value"},
		{"empty_chunk", "chunk with no data", "01000a a4 0007 01 6161 0200 03 40", "invalid_value"},
		{"bad_state", "app-status with state 0", "010031 a7 000c 01 6161 02 5820" + strings.Repeat("00", 32) + "0300 0500 0600 0700", "invalid_value"},
	}
}

// helloBadApp returns a Hello frame whose only app misses key 3.
func helloBadApp() string {
	b, _ := Encode(&Hello{
		DeviceID: "d", Board: "b", Firmware: "f",
		Caps: Capabilities{RAM: 1, Flash: 1, MaxModule: 1, ABI: 1, MaxFrame: MinMaxFrame},
		Apps: []AppInfo{{Name: "a", Digest: digest(0), State: StateRunning}},
	})
	// The app map ends with key 3 (0x03) and state 3 (0x03); drop them and
	// shrink the app map from 3 pairs (0xa3) to 2.
	i := bytes.LastIndex(b, []byte{0xa3, 0x01, 0x61, 'a'})
	b[i] = 0xa2
	b = b[:len(b)-2]
	return hex.EncodeToString(appendHeader(nil, len(b))) + hex.EncodeToString(b)
}

// lenientExample is a frame that decodes although it is not in canonical
// form; re-encoding gives the canonical bytes.
type lenientExample struct {
	name      string
	note      string
	hex       string
	msg       Message
	canonical string
}

func lenientExamples() []lenientExample {
	return []lenientExample{
		{"unknown_key", "heartbeat with unknown key 9 holding a map: ignored",
			"01000c a4 0003 0105 0207 09 a1016178", &Heartbeat{Seq: 5, Uptime: 7}, "010007a3000301050207"},
		{"unsorted_keys", "heartbeat with keys in reverse order",
			"010007a3020701050003", &Heartbeat{Seq: 5, Uptime: 7}, "010007a3000301050207"},
		{"long_heads", "non-shortest integer heads", "01000b a3 1800 03 01 1805 02 190007", &Heartbeat{Seq: 5, Uptime: 7}, "010007a3000301050207"},
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// errorKind names the outcome of decoding a frame for the manifest.
func errorKind(err error) string {
	var pe *Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	case errors.As(err, &pe):
		return pe.Code.String()
	}
	return "other: " + err.Error()
}

type goldenFile struct {
	Comment string          `json:"comment"`
	Valid   []manifestEntry `json:"valid"`
	Lenient []manifestEntry `json:"lenient"`
	Invalid []manifestEntry `json:"invalid"`
	// Manifests are deployment manifests with their signatures by GoldenKey.
	Manifests goldenManifests `json:"manifests"`
}

type manifestEntry struct {
	Name      string          `json:"name"`
	File      string          `json:"file"`
	Note      string          `json:"note,omitempty"`
	Type      string          `json:"type,omitempty"`
	TypeID    int             `json:"type_id,omitempty"`
	Hex       string          `json:"hex"`
	Canonical string          `json:"canonical_hex,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Error     string          `json:"error,omitempty"`
}

func buildManifest(t *testing.T) (goldenFile, map[string][]byte) {
	files := map[string][]byte{}
	m := goldenFile{Comment: "Golden frames of the Wasmbed device protocol (docs/protocol.md). " +
		"valid: decode, then re-encode to the same bytes. lenient: decode to value, re-encode to canonical_hex. " +
		"invalid: refuse with error (an error code name, or truncated) using the default 2048-byte limit. " +
		"manifests: deployment manifests signed by public_key; a valid one decodes to value, verifies, and its config_hash is the sha256 of config encoded as in Deploy; an invalid one is refused. " +
		"Regenerate with: go test ./api/protocol -run TestGolden -update"}
	m.Manifests = buildGoldenManifests(t)
	for _, ex := range goldenExamples() {
		frame, err := EncodeFrame(ex.msg)
		if err != nil {
			t.Fatalf("%s: %v", ex.name, err)
		}
		file := ex.name + ".bin"
		files[file] = frame
		m.Valid = append(m.Valid, manifestEntry{
			Name: ex.name, File: file, Note: ex.note, Type: ex.msg.Type().String(), TypeID: int(ex.msg.Type()),
			Hex: hex.EncodeToString(frame), Value: readableJSON(t, ex.msg),
		})
	}
	for _, ex := range lenientExamples() {
		file := "lenient/" + ex.name + ".bin"
		files[file] = unhex(t, ex.hex)
		m.Lenient = append(m.Lenient, manifestEntry{
			Name: ex.name, File: file, Note: ex.note, Type: ex.msg.Type().String(), TypeID: int(ex.msg.Type()),
			Hex: hex.EncodeToString(files[file]), Canonical: hex.EncodeToString(unhex(t, ex.canonical)),
			Value: readableJSON(t, ex.msg),
		})
	}
	for _, ex := range invalidExamples() {
		file := "invalid/" + ex.name + ".bin"
		files[file] = unhex(t, ex.hex)
		m.Invalid = append(m.Invalid, manifestEntry{
			Name: ex.name, File: file, Note: ex.note, Hex: hex.EncodeToString(files[file]), Error: ex.want,
		})
	}
	return m, files
}

func readableJSON(t *testing.T, m Message) json.RawMessage {
	b, err := json.Marshal(readable(reflect.ValueOf(m).Elem()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// orderedObject marshals as a JSON object whose members keep their order.
type orderedObject []struct {
	k string
	v any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(kv.k)
		v, err := json.Marshal(kv.v)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// readable renders a message for people: keys as "<key> <name>", byte strings
// as hex, in key order; omitted optional fields are left out.
func readable(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		var o orderedObject
		for i := 0; i < v.NumField(); i++ {
			sf := v.Type().Field(i)
			tag, ok := sf.Tag.Lookup("cbor")
			if !ok || !sf.IsExported() {
				continue
			}
			if strings.Contains(tag, "omitempty") && v.Field(i).IsZero() {
				continue
			}
			key := strings.Split(tag, ",")[0]
			o = append(o, struct {
				k string
				v any
			}{key + " " + snake(sf.Name), readable(v.Field(i))})
		}
		return o
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return hex.EncodeToString(v.Bytes())
		}
		out := []any{}
		for i := 0; i < v.Len(); i++ {
			out = append(out, readable(v.Index(i)))
		}
		return out
	case reflect.Map:
		out := map[string]string{}
		for _, k := range v.MapKeys() {
			out[k.String()] = v.MapIndex(k).String()
		}
		return out
	}
	if s, ok := v.Interface().(interface{ String() string }); ok && v.Kind() != reflect.String {
		return map[string]any{"value": v.Uint(), "name": s.String()}
	}
	return v.Interface()
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) && i > 0 && !unicode.IsUpper(rune(s[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	m, files := buildManifest(t)
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	files["golden.json"] = js
	if *update {
		for name, b := range files {
			p := filepath.Join(goldenDir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale (run with -update)", name)
		}
	}

	for _, ex := range goldenExamples() {
		t.Run("valid/"+ex.name, func(t *testing.T) {
			frame := files[ex.name+".bin"]
			got, err := DecodeFrame(frame, HardMaxFrame)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, ex.msg) {
				t.Fatalf("decode = %#v, want %#v", got, ex.msg)
			}
			again, err := EncodeFrame(got)
			if err != nil || !bytes.Equal(again, frame) {
				t.Fatalf("re-encode = %x, %v; want %x", again, err, frame)
			}
		})
	}
	for _, ex := range lenientExamples() {
		t.Run("lenient/"+ex.name, func(t *testing.T) {
			got, err := DecodeFrame(unhex(t, ex.hex), 0)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, ex.msg) {
				t.Fatalf("decode = %#v, want %#v", got, ex.msg)
			}
			again, err := EncodeFrame(got)
			if err != nil || !bytes.Equal(again, unhex(t, ex.canonical)) {
				t.Fatalf("re-encode = %x, %v; want %s", again, err, ex.canonical)
			}
		})
	}
	for _, ex := range invalidExamples() {
		t.Run("invalid/"+ex.name, func(t *testing.T) {
			b := unhex(t, ex.hex)
			_, err := DecodeFrame(b, 0)
			if got := errorKind(err); got != ex.want {
				t.Fatalf("error = %q (%v), want %q", got, err, ex.want)
			}
			// The stream reader must agree with DecodeFrame, except that it
			// cannot see bytes after a frame.
			if ex.name == "trailing_bytes_frame" {
				return
			}
			r := NewReader(bytes.NewReader(b), 0)
			_, err = r.ReadMessage()
			if got := errorKind(err); got != ex.want {
				t.Fatalf("reader error = %q (%v), want %q", got, err, ex.want)
			}
		})
	}
}
