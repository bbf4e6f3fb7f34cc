package protocol

import "time"

// Protocol version and framing constants.
const (
	// Version is the protocol version carried in the first byte of every frame.
	Version byte = 1
	// HeaderSize is the size of a frame header: version, then body length as a
	// big-endian uint16.
	HeaderSize = 3
	// DefaultMaxFrame is the largest body either side may send before Welcome
	// has negotiated another limit. It suits a board with 32 KiB of RAM.
	DefaultMaxFrame = 2048
	// MinMaxFrame is the smallest body limit a side may announce.
	MinMaxFrame = 512
	// HardMaxFrame is the largest body limit the protocol allows, whatever is
	// negotiated.
	HardMaxFrame = 16384
)

// Session timing defaults.
const (
	// DefaultHeartbeatInterval is the default period between device heartbeats.
	DefaultHeartbeatInterval = 30 * time.Second
	// DefaultHeartbeatTimeout is the default silence after which a side
	// considers the session dead.
	DefaultHeartbeatTimeout = 90 * time.Second
	// HelloTimeout is how long a gateway waits for Hello after the TLS
	// handshake before it closes the connection.
	HelloTimeout = 10 * time.Second
	// MaxHeartbeatSeconds bounds the heartbeat interval and timeout carried in
	// Welcome.
	MaxHeartbeatSeconds = 86400
)

// Field limits, in bytes unless stated otherwise.
const (
	// DigestSize is the size of a sha256 module digest.
	DigestSize = 32
	// SignatureSize is the size of an ed25519 module signature.
	SignatureSize = 64
	// MaxDeviceIDLen bounds the device id claimed in Hello
	// ("<namespace>/<device>").
	MaxDeviceIDLen = 320
	// MaxBoardLen bounds the board name in Hello.
	MaxBoardLen = 64
	// MaxFirmwareLen bounds the firmware version in Hello.
	MaxFirmwareLen = 64
	// MaxAppNameLen bounds an application name (an RFC 1123 label).
	MaxAppNameLen = 63
	// MaxApps bounds the number of applications listed in Hello.
	MaxApps = 16
	// MaxModuleSize bounds the size of a module in Deploy; a device announces
	// its own, usually smaller, limit in Hello.
	MaxModuleSize = 16 << 20
	// MaxConfigEntries bounds the number of configuration entries in Deploy.
	MaxConfigEntries = 32
	// MaxConfigKeyLen bounds a configuration key.
	MaxConfigKeyLen = 64
	// MaxConfigValueLen bounds a configuration value.
	MaxConfigValueLen = 256
	// MaxWindow bounds the number of unacknowledged chunks a device may allow.
	MaxWindow = 16
	// ChunkOverhead is the size of the largest possible Chunk body minus its
	// data: a chunk of n data bytes always fits in a frame of n+ChunkOverhead.
	ChunkOverhead = 79
	// MaxTopicLen bounds a telemetry topic (as in the ABI's publish).
	MaxTopicLen = 64
	// MaxTelemetryPayload bounds a telemetry payload (as in the ABI's publish).
	MaxTelemetryPayload = 512
	// MaxLogMessageLen bounds a log line (as in the ABI's log).
	MaxLogMessageLen = 256
	// MaxErrorMessageLen bounds the text of an Error and of AppStatus.Error.
	MaxErrorMessageLen = 128
)

// MaxChunkSize returns the largest chunk data size that fits in a body limit
// of maxFrame bytes, or 0 when none does.
func MaxChunkSize(maxFrame int) int {
	if maxFrame > HardMaxFrame {
		maxFrame = HardMaxFrame
	}
	if maxFrame <= ChunkOverhead {
		return 0
	}
	return maxFrame - ChunkOverhead
}

// ChunkSizeFor returns the chunk size a gateway should announce in Deploy for a
// negotiated body limit: the largest power of two that fits, which matches
// flash page sizes on devices. It returns 0 when no chunk fits.
func ChunkSizeFor(maxFrame int) uint32 {
	limit := MaxChunkSize(maxFrame)
	if limit == 0 {
		return 0
	}
	size := 1
	for size*2 <= limit {
		size *= 2
	}
	return uint32(size)
}
