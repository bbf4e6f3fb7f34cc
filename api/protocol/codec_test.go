package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTripEveryType(t *testing.T) {
	seen := map[MessageType]bool{}
	for _, ex := range goldenExamples() {
		t.Run(ex.name, func(t *testing.T) {
			body, err := Encode(ex.msg)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if body[0]&0xe0 != 0xa0 || body[1] != 0x00 {
				t.Fatalf("body %x does not start with a map and key 0", body[:2])
			}
			got, err := Decode(body)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, ex.msg) {
				t.Fatalf("decode = %#v, want %#v", got, ex.msg)
			}
			seen[got.Type()] = true
		})
	}
	for mt := MessageType(1); mt.Known(); mt++ {
		if !seen[mt] {
			t.Errorf("no golden example for %s", mt)
		}
		if New(mt) == nil || New(mt).Type() != mt {
			t.Errorf("New(%s) is wrong", mt)
		}
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		msg  Message
	}{
		{"nil", (*Start)(nil)},
		{"hello no device id", &Hello{Board: "b", Firmware: "f", Caps: Capabilities{ABI: 1, MaxFrame: 2048}}},
		{"hello abi zero", &Hello{DeviceID: "d", Board: "b", Firmware: "f", Caps: Capabilities{MaxFrame: 2048}}},
		{"hello frame too small", &Hello{DeviceID: "d", Board: "b", Firmware: "f", Caps: Capabilities{ABI: 1, MaxFrame: 100}}},
		{"hello duplicate app", &Hello{DeviceID: "d", Board: "b", Firmware: "f", Caps: Capabilities{ABI: 1, MaxFrame: 2048},
			Apps: []AppInfo{{"a", digest(0), StateRunning}, {"a", digest(0), StateRunning}}}},
		{"welcome timeout not above interval", &Welcome{SessionID: 1, HeartbeatInterval: 30, HeartbeatTimeout: 30, MaxFrame: 2048}},
		{"welcome session zero", &Welcome{HeartbeatInterval: 30, HeartbeatTimeout: 90, MaxFrame: 2048}},
		{"deploy short digest", &Deploy{App: "a", Digest: []byte{1}, Size: 1, ChunkSize: 1}},
		{"deploy size zero", &Deploy{App: "a", Digest: digest(0), ChunkSize: 1}},
		{"deploy chunk too big", &Deploy{App: "a", Digest: digest(0), Size: 1, ChunkSize: HardMaxFrame}},
		{"deploy bad signature", &Deploy{App: "a", Digest: digest(0), Size: 1, ChunkSize: 1, Signature: []byte{1}}},
		{"deploy long config value", &Deploy{App: "a", Digest: digest(0), Size: 1, ChunkSize: 1, Config: map[string]string{"k": long}}},
		{"deploy empty config key", &Deploy{App: "a", Digest: digest(0), Size: 1, ChunkSize: 1, Config: map[string]string{"": "v"}}},
		{"deploy-ack window zero", &DeployAck{App: "a", Digest: digest(0)}},
		{"chunk empty", &Chunk{App: "a"}},
		{"start upper case", &Start{App: "A"}},
		{"stop trailing hyphen", &Stop{App: "a-"}},
		{"remove empty", &Remove{}},
		{"app-status state zero", &AppStatus{App: "a", Digest: digest(0)}},
		{"telemetry no topic", &Telemetry{App: "a"}},
		{"telemetry big payload", &Telemetry{App: "a", Topic: "t", Payload: make([]byte, MaxTelemetryPayload+1)}},
		{"log bad level", &Log{Level: 4}},
		{"log too long", &Log{Message: long}},
		{"log invalid utf-8", &Log{Message: "\xff"}},
		{"error code zero", &Error{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Encode(tt.msg); err == nil {
				t.Fatal("encode succeeded")
			}
		})
	}
}

// TestDecodeRefusals covers the strict decoding rules on bodies; the golden
// invalid frames cover the same rules through the framing.
func TestDecodeRefusals(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want ErrorCode
	}{
		{"empty", "", CodeMalformed},
		{"wrong type for a key", "a2 0009 01 05", CodeMalformed},
		{"duplicate key in config", "a6 0005 01 6161 02 5820" + strings.Repeat("00", 32) +
			"03 01 04 01 05 a2 616b 6176 616b 6177", CodeMalformed},
		{"null config value", "a6 0005 01 6161 02 5820" + strings.Repeat("00", 32) +
			"03 01 04 01 05 a1 616b f6", CodeMalformed},
		{"config value not text", "a6 0005 01 6161 02 5820" + strings.Repeat("00", 32) +
			"03 01 04 01 05 a1 616b 01", CodeMalformed},
		{"unknown message type", "a1 00 10", CodeUnknownMessage},
		{"unknown type with fields", "a2 00 1864 01 02", CodeUnknownMessage},
		{"truncated map", "a3 0003 01", CodeMalformed},
		{"truncated byte string", "a4 0007 01 6161 0200 03 45 0102", CodeMalformed},
		{"garbage", "deadbeef", CodeMalformed},
		{"huge length", "a1 00 5b ffffffffffffffff", CodeMalformed},
		{"deep nesting", "a2 0003 09" + strings.Repeat("81", 20) + "00", CodeMalformed},
		{"capabilities not a map", "a6 0001 01 6164 02 6162 03 6166 04 80 05 80", CodeMalformed},
		{"apps not an array", "a6 0001 01 6164 02 6162 03 6166 04 a5 0101 0201 0301 0401 05 190800 05 a0", CodeMalformed},
		{"null error message", "a2 000f 01 01 02 f6", CodeMalformed},
		{"unknown state", "a7 000c 01 6161 02 5820" + strings.Repeat("00", 32) + "03 08 0500 0600 0700", CodeInvalidValue},
		{"unknown log level", "a3 000e 01 04 03 60", CodeInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(unhex(t, tt.hex))
			if err == nil {
				t.Fatalf("decoded %#v", m)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want code %s", err, tt.want)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not *Error", err)
			}
			if _, err := Encode(pe); err != nil {
				t.Fatalf("the error cannot be sent back: %v", err)
			}
		})
	}
}

func TestDecodeToleratesUnknownKeys(t *testing.T) {
	// Start with an unknown key 7 (an array) and an unknown key 30 (bytes).
	m, err := Decode(unhex(t, "a4 0009 01 6161 07 820102 181e 43010203"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, &Start{App: "a"}) {
		t.Fatalf("got %#v", m)
	}
	// Unknown keys inside capabilities are ignored too.
	h := &Hello{DeviceID: "d", Board: "b", Firmware: "f", Caps: Capabilities{RAM: 1, Flash: 1, MaxModule: 1, ABI: 1, MaxFrame: 512}}
	body, _ := Encode(h)
	i := bytes.Index(body, []byte{0xa5, 0x01, 0x01})
	patched := append(append(append([]byte{}, body[:i]...), 0xa6, 0x09, 0x09), body[i+1:]...)
	got, err := Decode(patched)
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("got %#v, %v", got, err)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	body, err := Encode(&Chunk{App: "a", Offset: 0, Data: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 0
	}
	if c := m.(*Chunk); !bytes.Equal(c.Data, []byte{1, 2, 3}) || c.App != "a" {
		t.Fatalf("decoded chunk changed with its input: %#v", c)
	}
}

func TestChunkOverhead(t *testing.T) {
	for _, limit := range []int{MinMaxFrame, DefaultMaxFrame, 4096, HardMaxFrame} {
		c := &Chunk{App: strings.Repeat("z", MaxAppNameLen), Offset: MaxModuleSize - 1, Data: make([]byte, MaxChunkSize(limit))}
		body, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(body) != limit {
			t.Errorf("limit %d: largest chunk body is %d bytes", limit, len(body))
		}
	}
	if got := ChunkSizeFor(DefaultMaxFrame); got != 1024 {
		t.Errorf("ChunkSizeFor(default) = %d", got)
	}
	if got := ChunkSizeFor(HardMaxFrame); got != 8192 {
		t.Errorf("ChunkSizeFor(hard) = %d", got)
	}
	if got := ChunkSizeFor(ChunkOverhead); got != 0 {
		t.Errorf("ChunkSizeFor(overhead) = %d", got)
	}
}

func TestErrorValue(t *testing.T) {
	err := error(NewError(CodeNotFound, TypeStart, "no app"))
	if !errors.Is(err, CodeNotFound) || errors.Is(err, CodeBusy) {
		t.Fatal("errors.Is does not match codes")
	}
	if got := err.Error(); got != "not_found (start): no app" {
		t.Fatalf("Error() = %q", got)
	}
	long := NewError(CodeInternal, 0, strings.Repeat("é", 100))
	if len(long.Message) > MaxErrorMessageLen || !strings.HasPrefix(strings.Repeat("é", 100), long.Message) {
		t.Fatalf("message not truncated on a character boundary: %d bytes", len(long.Message))
	}
	if ErrorCode(999).String() != "code(999)" || MessageType(99).String() != "type(99)" || AppState(9).String() != "state(9)" {
		t.Fatal("unknown enum names")
	}
	for c := CodeMalformed; c <= CodeGoingAway; c++ {
		if strings.HasPrefix(c.String(), "code(") {
			t.Errorf("code %d has no name", c)
		}
	}
}

func TestSenders(t *testing.T) {
	for mt := MessageType(1); mt.Known(); mt++ {
		if mt.Sender() == SenderNone {
			t.Errorf("%s has no sender", mt)
		}
	}
	if TypeHello.Sender() != SenderDevice || TypeDeploy.Sender() != SenderGateway || TypeError.Sender() != SenderBoth {
		t.Fatal("wrong senders")
	}
}

func TestDecodeShared(t *testing.T) {
	chunk := &Chunk{App: "sensor-hub", Offset: 8192, Data: bytes.Repeat([]byte{0x5a}, 8192)}
	canonical, err := Encode(chunk)
	if err != nil {
		t.Fatal(err)
	}
	// The type as a one-byte uint (0x18 0x07): accepted by Decode, and shared.
	longType := append([]byte{canonical[0], 0x00, 0x18, 0x07}, canonical[3:]...)
	// {0: 7, 1: "a", 2: 0, 3: [1, 2]}: the CBOR library takes an array of small
	// integers for a []byte; such data is decoded by it, as by Decode, into a copy.
	arrayData := []byte{0xa4, 0x00, 0x07, 0x01, 0x61, 'a', 0x02, 0x00, 0x03, 0x82, 0x01, 0x02}
	heartbeat, err := Encode(&Heartbeat{Seq: 7})
	if err != nil {
		t.Fatal(err)
	}
	badOffset, err := Encode(&Chunk{App: "a", Offset: 1, Data: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	badOffset[len(badOffset)-4] = 0x1a // offset 1 -> a u32 head: the bytes after it are short
	tests := []struct {
		name   string
		body   []byte
		want   Message
		shared bool
	}{
		{"canonical chunk shares the body", canonical, chunk, true},
		{"type in a longer form shares too", longType, chunk, true},
		{"data as an array is copied", arrayData, &Chunk{App: "a", Data: []byte{1, 2}}, false},
		{"other messages as Decode", heartbeat, &Heartbeat{Seq: 7}, false},
		{"errors as Decode", badOffset, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Clone(tt.body)
			got, err := DecodeShared(body)
			want, werr := Decode(tt.body)
			if tt.want == nil {
				if err == nil || werr == nil || err.Error() != werr.Error() {
					t.Fatalf("DecodeShared error %v, Decode error %v", err, werr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(want, tt.want) {
				t.Fatalf("DecodeShared %+v, Decode %+v, want %+v", got, want, tt.want)
			}
			c, ok := got.(*Chunk)
			if shared := ok && shares(body, c.Data); shared != tt.shared {
				t.Fatalf("data shared with the body: %v, want %v", shared, tt.shared)
			}
		})
	}
}
