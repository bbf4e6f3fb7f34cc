package manager

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names.
const (
	MetricBoardsRunning     = "wasmbed_boards_running"
	MetricBoardRestarts     = "wasmbed_board_restarts_total"
	MetricBridgeFrames      = "wasmbed_board_bridge_frames_total"
	MetricBridgeBytes       = "wasmbed_board_bridge_bytes_total"
	MetricBridgeSessions    = "wasmbed_board_bridge_sessions_total"
	MetricBridgeFrameErrors = "wasmbed_board_bridge_framing_errors_total"
	MetricEnrollments       = "wasmbed_board_enrollments_total"
)

// Directions of bridged frames.
const (
	ToGateway = "to_gateway"
	ToBoard   = "to_board"
)

// Metrics are the board manager's Prometheus metrics, shared by its emulators and
// bridges. Labels are bounded: board model and direction, never the device.
type Metrics struct {
	running     *prometheus.GaugeVec
	restarts    *prometheus.CounterVec
	frames      *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	sessions    *prometheus.CounterVec
	frameErrors *prometheus.CounterVec
	enrollments *prometheus.CounterVec
}

// discardMetrics is used when no Metrics are given; it is registered nowhere.
var discardMetrics = mustMetrics(nil)

func mustMetrics(reg prometheus.Registerer) *Metrics {
	m, err := NewMetrics(reg)
	if err != nil {
		panic(err) // only with a nil registerer, which cannot fail
	}
	return m
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
// Registering twice with one registry reuses the existing collectors.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricBoardsRunning,
			Help: "Emulator processes running, by board model."}, []string{"board"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBoardRestarts,
			Help: "Emulator processes restarted after they exited, by board model."}, []string{"board"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBridgeFrames,
			Help: "Protocol frames copied between boards' UARTs and the gateway, by direction."}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBridgeBytes,
			Help: "Frame bytes (headers included) copied between boards' UARTs and the gateway, by direction."}, []string{"direction"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBridgeSessions,
			Help: "Gateway sessions opened for boards, by result: welcomed, refused (an Error instead of Welcome) or failed."}, []string{"result"}),
		frameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBridgeFrameErrors,
			Help: "Framing errors on boards' UARTs (bad version, empty or oversized frame) that ended a session."}, []string{"board"}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEnrollments,
			Help: "Boards' certificate signing requests, by result: issued, denied, failed (approved but not signed), timeout or error."}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	register := func(c prometheus.Collector) (prometheus.Collector, error) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return are.ExistingCollector, nil
			}
			return nil, fmt.Errorf("register board metrics: %w", err)
		}
		return c, nil
	}
	for _, p := range []**prometheus.GaugeVec{&m.running} {
		c, err := register(*p)
		if err != nil {
			return nil, err
		}
		*p = c.(*prometheus.GaugeVec)
	}
	for _, p := range []**prometheus.CounterVec{&m.restarts, &m.frames, &m.bytes, &m.sessions, &m.frameErrors, &m.enrollments} {
		c, err := register(*p)
		if err != nil {
			return nil, err
		}
		*p = c.(*prometheus.CounterVec)
	}
	return m, nil
}
