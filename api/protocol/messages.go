package protocol

import (
	"fmt"
	"unicode/utf8"
)

// Message is implemented by a pointer to each message struct.
type Message interface {
	// Type returns the message type written under key 0.
	Type() MessageType
	// Validate checks value ranges and lengths; it returns an *Error with
	// CodeInvalidValue when a field is out of range.
	Validate() error
}

// Capabilities describes what a device can hold and run.
type Capabilities struct {
	// RAM is the device's RAM in bytes.
	RAM uint32 `cbor:"1,keyasint"`
	// Flash is the device's flash in bytes.
	Flash uint32 `cbor:"2,keyasint"`
	// MaxModule is the largest module the device accepts, in bytes.
	MaxModule uint32 `cbor:"3,keyasint"`
	// ABI is the application ABI version the device implements (docs/abi.md).
	ABI uint32 `cbor:"4,keyasint"`
	// MaxFrame is the largest frame body the device can receive.
	MaxFrame uint32 `cbor:"5,keyasint"`
}

// AppInfo is one application a device holds, as listed in Hello.
type AppInfo struct {
	// Name is the application name.
	Name string `cbor:"1,keyasint"`
	// Digest is the module's sha256.
	Digest []byte `cbor:"2,keyasint"`
	// State is the application's state.
	State AppState `cbor:"3,keyasint"`
}

// Hello is the first message of every session, sent by the device.
type Hello struct {
	// DeviceID is the identity the device claims; the gateway trusts only the
	// certificate and refuses a mismatch.
	DeviceID string `cbor:"1,keyasint"`
	// Board is the board model, for example "stm32f407-discovery".
	Board string `cbor:"2,keyasint"`
	// Firmware is the firmware version.
	Firmware string `cbor:"3,keyasint"`
	// Caps are the device's capabilities.
	Caps Capabilities `cbor:"4,keyasint"`
	// Apps lists the applications the device holds, possibly none.
	Apps []AppInfo `cbor:"5,keyasint"`
}

// Welcome answers Hello and opens the session, sent by the gateway.
type Welcome struct {
	// SessionID identifies the session in logs on both sides; never zero.
	SessionID uint64 `cbor:"1,keyasint"`
	// HeartbeatInterval is the period between device heartbeats, in seconds.
	HeartbeatInterval uint32 `cbor:"2,keyasint"`
	// HeartbeatTimeout is the silence after which either side drops the
	// session, in seconds.
	HeartbeatTimeout uint32 `cbor:"3,keyasint"`
	// ServerTime is the gateway's clock in Unix milliseconds.
	ServerTime uint64 `cbor:"4,keyasint"`
	// MaxFrame is the body limit both sides use from now on.
	MaxFrame uint32 `cbor:"5,keyasint"`
}

// Heartbeat proves the device is alive, sent by the device every interval.
type Heartbeat struct {
	// Seq increases by one per heartbeat and wraps around.
	Seq uint32 `cbor:"1,keyasint"`
	// Uptime is the device's time since boot, in milliseconds.
	Uptime uint64 `cbor:"2,keyasint"`
}

// HeartbeatAck answers a Heartbeat, sent by the gateway.
type HeartbeatAck struct {
	// Seq echoes the heartbeat's sequence number.
	Seq uint32 `cbor:"1,keyasint"`
	// ServerTime is the gateway's clock in Unix milliseconds.
	ServerTime uint64 `cbor:"2,keyasint"`
}

// Deploy announces a module transfer, sent by the gateway.
type Deploy struct {
	// App is the application name.
	App string `cbor:"1,keyasint"`
	// Digest is the module's sha256.
	Digest []byte `cbor:"2,keyasint"`
	// Size is the module size in bytes.
	Size uint32 `cbor:"3,keyasint"`
	// ChunkSize is the data size of every chunk but the last.
	ChunkSize uint32 `cbor:"4,keyasint"`
	// Config is the application's configuration, possibly empty.
	Config map[string]string `cbor:"5,keyasint"`
	// Signature is the deployment key's ed25519 signature of Manifest; a Deploy
	// carries both or neither.
	Signature []byte `cbor:"6,keyasint,omitempty"`
	// Manifest is the encoded deployment manifest the signature covers (Manifest).
	Manifest []byte `cbor:"7,keyasint,omitempty"`
}

// DeployAck accepts a Deploy, sent by the device. Offset says how many bytes
// of this digest the device already holds, so a transfer resumes there.
type DeployAck struct {
	// App is the application name.
	App string `cbor:"1,keyasint"`
	// Digest echoes Deploy's digest.
	Digest []byte `cbor:"2,keyasint"`
	// Offset is where the transfer resumes: 0, a multiple of the chunk size,
	// or the module size when nothing is missing.
	Offset uint32 `cbor:"3,keyasint"`
	// Window is how many chunks the gateway may send beyond the last
	// acknowledged one, 1 to MaxWindow.
	Window uint32 `cbor:"4,keyasint"`
}

// Chunk carries module bytes, sent by the gateway.
type Chunk struct {
	// App is the application name.
	App string `cbor:"1,keyasint"`
	// Offset is the position of Data in the module.
	Offset uint32 `cbor:"2,keyasint"`
	// Data holds the bytes, never empty.
	Data []byte `cbor:"3,keyasint"`
}

// ChunkAck acknowledges every byte before Next, sent by the device.
type ChunkAck struct {
	// App is the application name.
	App string `cbor:"1,keyasint"`
	// Next is the number of contiguous bytes the device holds.
	Next uint32 `cbor:"2,keyasint"`
}

// Start runs a received application, sent by the gateway.
type Start struct {
	// App is the application name.
	App string `cbor:"1,keyasint"`
}

// Stop stops a running application, sent by the gateway.
type Stop struct {
	// App is the application name.
	App string `cbor:"1,keyasint"`
}

// Remove stops an application if needed and deletes its module, sent by the
// gateway.
type Remove struct {
	// App is the application name.
	App string `cbor:"1,keyasint"`
}

// AppStatus reports an application's state and counters, sent by the device.
type AppStatus struct {
	// App is the application name.
	App string `cbor:"1,keyasint"`
	// Digest is the module's sha256.
	Digest []byte `cbor:"2,keyasint"`
	// State is the application's state.
	State AppState `cbor:"3,keyasint"`
	// Error explains a Failed state; optional.
	Error string `cbor:"4,keyasint,omitempty"`
	// Loops counts loop calls since the last start.
	Loops uint64 `cbor:"5,keyasint"`
	// Traps counts traps since the module was received.
	Traps uint64 `cbor:"6,keyasint"`
	// Fuel is the fuel used since the last start.
	Fuel uint64 `cbor:"7,keyasint"`
}

// Telemetry carries one record an application published, sent by the device.
type Telemetry struct {
	// App is the publishing application.
	App string `cbor:"1,keyasint"`
	// Topic is 1 to MaxTopicLen bytes of UTF-8.
	Topic string `cbor:"2,keyasint"`
	// Payload is opaque, at most MaxTelemetryPayload bytes.
	Payload []byte `cbor:"3,keyasint"`
	// Time is the device's estimate of Unix milliseconds (its uptime plus the
	// offset learnt from Welcome), or 0 when unknown.
	Time uint64 `cbor:"4,keyasint"`
}

// Log carries a console line from the firmware or an application, sent by the
// device.
type Log struct {
	// Level is the severity.
	Level LogLevel `cbor:"1,keyasint"`
	// App names the application; empty for the firmware itself.
	App string `cbor:"2,keyasint,omitempty"`
	// Message is the line, at most MaxLogMessageLen bytes.
	Message string `cbor:"3,keyasint"`
}

// Type returns TypeHello.
func (*Hello) Type() MessageType { return TypeHello }

// Type returns TypeWelcome.
func (*Welcome) Type() MessageType { return TypeWelcome }

// Type returns TypeHeartbeat.
func (*Heartbeat) Type() MessageType { return TypeHeartbeat }

// Type returns TypeHeartbeatAck.
func (*HeartbeatAck) Type() MessageType { return TypeHeartbeatAck }

// Type returns TypeDeploy.
func (*Deploy) Type() MessageType { return TypeDeploy }

// Type returns TypeDeployAck.
func (*DeployAck) Type() MessageType { return TypeDeployAck }

// Type returns TypeChunk.
func (*Chunk) Type() MessageType { return TypeChunk }

// Type returns TypeChunkAck.
func (*ChunkAck) Type() MessageType { return TypeChunkAck }

// Type returns TypeStart.
func (*Start) Type() MessageType { return TypeStart }

// Type returns TypeStop.
func (*Stop) Type() MessageType { return TypeStop }

// Type returns TypeRemove.
func (*Remove) Type() MessageType { return TypeRemove }

// Type returns TypeAppStatus.
func (*AppStatus) Type() MessageType { return TypeAppStatus }

// Type returns TypeTelemetry.
func (*Telemetry) Type() MessageType { return TypeTelemetry }

// Type returns TypeLog.
func (*Log) Type() MessageType { return TypeLog }

// Validate checks lengths, the frame limit, the ABI version and the app list.
func (m *Hello) Validate() error {
	const t = TypeHello
	if err := checkText(t, "device id", m.DeviceID, 1, MaxDeviceIDLen); err != nil {
		return err
	}
	if err := checkText(t, "board", m.Board, 1, MaxBoardLen); err != nil {
		return err
	}
	if err := checkText(t, "firmware", m.Firmware, 1, MaxFirmwareLen); err != nil {
		return err
	}
	if m.Caps.ABI == 0 {
		return invalid(t, "abi version is zero")
	}
	if err := checkFrameLimit(t, m.Caps.MaxFrame); err != nil {
		return err
	}
	if len(m.Apps) > MaxApps {
		return invalid(t, "%d apps, limit %d", len(m.Apps), MaxApps)
	}
	for i, a := range m.Apps {
		if err := checkAppName(t, a.Name); err != nil {
			return err
		}
		if err := checkDigest(t, a.Digest); err != nil {
			return err
		}
		if !a.State.Valid() {
			return invalid(t, "app %s: unknown state %d", a.Name, a.State)
		}
		for _, b := range m.Apps[:i] {
			if b.Name == a.Name {
				return invalid(t, "app %s listed twice", a.Name)
			}
		}
	}
	return nil
}

// Validate checks the session id, the heartbeat timing and the frame limit.
func (m *Welcome) Validate() error {
	const t = TypeWelcome
	if m.SessionID == 0 {
		return invalid(t, "session id is zero")
	}
	if m.HeartbeatInterval == 0 || m.HeartbeatInterval > MaxHeartbeatSeconds {
		return invalid(t, "heartbeat interval %d s out of range", m.HeartbeatInterval)
	}
	if m.HeartbeatTimeout <= m.HeartbeatInterval || m.HeartbeatTimeout > MaxHeartbeatSeconds {
		return invalid(t, "heartbeat timeout %d s out of range", m.HeartbeatTimeout)
	}
	return checkFrameLimit(t, m.MaxFrame)
}

// Validate accepts every value.
func (m *Heartbeat) Validate() error { return nil }

// Validate accepts every value.
func (m *HeartbeatAck) Validate() error { return nil }

// Validate checks the name, digest, sizes, configuration and signature.
func (m *Deploy) Validate() error {
	const t = TypeDeploy
	if err := checkAppName(t, m.App); err != nil {
		return err
	}
	if err := checkDigest(t, m.Digest); err != nil {
		return err
	}
	if m.Size == 0 || m.Size > MaxModuleSize {
		return invalid(t, "size %d out of range", m.Size)
	}
	if m.ChunkSize == 0 || int(m.ChunkSize) > MaxChunkSize(HardMaxFrame) {
		return invalid(t, "chunk size %d out of range", m.ChunkSize)
	}
	if len(m.Config) > MaxConfigEntries {
		return invalid(t, "%d config entries, limit %d", len(m.Config), MaxConfigEntries)
	}
	for k, v := range m.Config {
		if err := checkText(t, "config key", k, 1, MaxConfigKeyLen); err != nil {
			return err
		}
		if err := checkText(t, "config value", v, 0, MaxConfigValueLen); err != nil {
			return err
		}
	}
	if len(m.Signature) != 0 && len(m.Signature) != SignatureSize {
		return invalid(t, "signature is %d bytes, want %d", len(m.Signature), SignatureSize)
	}
	if len(m.Manifest) > MaxManifestSize {
		return invalid(t, "manifest is %d bytes, limit %d", len(m.Manifest), MaxManifestSize)
	}
	if (len(m.Signature) == 0) != (len(m.Manifest) == 0) {
		return invalid(t, "a signature and a manifest go together")
	}
	return nil
}

// Validate checks the name, digest, offset and window.
func (m *DeployAck) Validate() error {
	const t = TypeDeployAck
	if err := checkAppName(t, m.App); err != nil {
		return err
	}
	if err := checkDigest(t, m.Digest); err != nil {
		return err
	}
	if m.Offset > MaxModuleSize {
		return invalid(t, "offset %d out of range", m.Offset)
	}
	if m.Window == 0 || m.Window > MaxWindow {
		return invalid(t, "window %d out of range", m.Window)
	}
	return nil
}

// Validate checks the name, offset and data size.
func (m *Chunk) Validate() error {
	const t = TypeChunk
	if err := checkAppName(t, m.App); err != nil {
		return err
	}
	if m.Offset >= MaxModuleSize {
		return invalid(t, "offset %d out of range", m.Offset)
	}
	if len(m.Data) == 0 || len(m.Data) > MaxChunkSize(HardMaxFrame) {
		return invalid(t, "data is %d bytes", len(m.Data))
	}
	return nil
}

// Validate checks the name and offset.
func (m *ChunkAck) Validate() error {
	if err := checkAppName(TypeChunkAck, m.App); err != nil {
		return err
	}
	if m.Next > MaxModuleSize {
		return invalid(TypeChunkAck, "next %d out of range", m.Next)
	}
	return nil
}

// Validate checks the name.
func (m *Start) Validate() error { return checkAppName(TypeStart, m.App) }

// Validate checks the name.
func (m *Stop) Validate() error { return checkAppName(TypeStop, m.App) }

// Validate checks the name.
func (m *Remove) Validate() error { return checkAppName(TypeRemove, m.App) }

// Validate checks the name, digest, state and error text.
func (m *AppStatus) Validate() error {
	const t = TypeAppStatus
	if err := checkAppName(t, m.App); err != nil {
		return err
	}
	if err := checkDigest(t, m.Digest); err != nil {
		return err
	}
	if !m.State.Valid() {
		return invalid(t, "unknown state %d", m.State)
	}
	return checkText(t, "error", m.Error, 0, MaxErrorMessageLen)
}

// Validate checks the name, topic and payload size.
func (m *Telemetry) Validate() error {
	const t = TypeTelemetry
	if err := checkAppName(t, m.App); err != nil {
		return err
	}
	if err := checkText(t, "topic", m.Topic, 1, MaxTopicLen); err != nil {
		return err
	}
	if len(m.Payload) > MaxTelemetryPayload {
		return invalid(t, "payload is %d bytes, limit %d", len(m.Payload), MaxTelemetryPayload)
	}
	return nil
}

// Validate checks the level, the optional name and the message length.
func (m *Log) Validate() error {
	const t = TypeLog
	if m.Level > LevelError {
		return invalid(t, "unknown level %d", m.Level)
	}
	if m.App != "" {
		if err := checkAppName(t, m.App); err != nil {
			return err
		}
	}
	return checkText(t, "message", m.Message, 0, MaxLogMessageLen)
}

func checkText(t MessageType, field, s string, min, max int) error {
	if len(s) < min || len(s) > max {
		return invalid(t, "%s is %d bytes, want %d to %d", field, len(s), min, max)
	}
	if !utf8.ValidString(s) {
		return invalid(t, "%s is not utf-8", field)
	}
	return nil
}

// checkAppName accepts an RFC 1123 label: lower-case letters, digits and
// inner hyphens, 1 to MaxAppNameLen bytes.
func checkAppName(t MessageType, name string) error {
	if why := labelProblem(name, MaxAppNameLen); why != "" {
		return invalid(t, "app name %q %s", truncate(name, 64), why)
	}
	return nil
}

// labelProblem says why s is not an RFC 1123 label of 1 to max bytes, or "".
func labelProblem(s string, max int) string {
	if len(s) == 0 || len(s) > max {
		return fmt.Sprintf("is %d bytes, want 1 to %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return "is not an rfc 1123 label"
		}
	}
	return ""
}

func checkDigest(t MessageType, d []byte) error {
	if len(d) != DigestSize {
		return invalid(t, "digest is %d bytes, want %d", len(d), DigestSize)
	}
	return nil
}

func checkFrameLimit(t MessageType, n uint32) error {
	if n < MinMaxFrame || n > HardMaxFrame {
		return invalid(t, "max frame %d out of range %d to %d", n, MinMaxFrame, HardMaxFrame)
	}
	return nil
}
