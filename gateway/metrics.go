package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmbed/wasmbed/api/protocol"
)

// Metric names, for dashboards and tests.
const (
	MetricSessions         = "wasmbed_gateway_sessions"
	MetricHandshakes       = "wasmbed_gateway_handshakes_total"
	MetricCloses           = "wasmbed_gateway_session_closes_total"
	MetricProtocolErrors   = "wasmbed_gateway_protocol_errors_total"
	MetricBytes            = "wasmbed_gateway_bytes_total"
	MetricFrames           = "wasmbed_gateway_frames_total"
	MetricTransferSeconds  = "wasmbed_gateway_transfer_duration_seconds"
	MetricTransferBytes    = "wasmbed_gateway_transfer_bytes_total"
	MetricDeployments      = "wasmbed_gateway_deployments_total"
	MetricEvents           = "wasmbed_gateway_events_total"
	MetricSummaries        = "wasmbed_gateway_summaries_total"
	MetricDeployRequests   = "wasmbed_gateway_deploy_requests_total"
	MetricEnrollments      = "wasmbed_gateway_enrollments_total"
	MetricAcceptErrors     = "wasmbed_gateway_accept_errors_total"
	MetricPending          = "wasmbed_gateway_pending_connections"
	MetricMaxSessions      = "wasmbed_gateway_max_sessions"
	metricDirectionIn      = "in"
	metricDirectionOut     = "out"
	maxMessageTypeForLabel = int(protocol.TypeError)
)

// metrics holds the gateway's collectors. Per-frame counters are resolved once so the
// hot path does no label lookups.
type metrics struct {
	sessions        prometheus.Gauge
	handshakes      *prometheus.CounterVec
	closes          *prometheus.CounterVec
	protocolErrors  *prometheus.CounterVec
	bytesIn         prometheus.Counter
	bytesOut        prometheus.Counter
	framesIn        [maxMessageTypeForLabel + 1]prometheus.Counter
	framesOut       prometheus.Counter
	transferSeconds prometheus.Histogram
	transferBytes   prometheus.Counter
	deployments     *prometheus.CounterVec
	summaries       prometheus.Counter
	deployRequests  *prometheus.CounterVec
	enrollments     *prometheus.CounterVec
	acceptErrors    *prometheus.CounterVec
	pending         prometheus.Gauge
	maxSessions     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricSessions, Help: "Device sessions open (after Welcome)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricPending,
			Help: "Connections between accept and a checked Hello (TLS handshake, registry, Hello)."}),
		maxSessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricMaxSessions,
			Help: "Bound on sessions plus pending connections, after fitting the file-descriptor limit."}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricHandshakes,
			Help: "TLS handshakes by result: ok or the failure reason."}, []string{"result"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricCloses,
			Help: "Connections and sessions closed, by close reason (refusals before and after the TLS handshake included)."}, []string{"reason"}),
		protocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricProtocolErrors,
			Help: "Protocol errors by direction (sent to or received from devices) and code."}, []string{"direction", "code"}),
		bytesIn:  nil,
		bytesOut: nil,
		transferSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricTransferSeconds,
			Help:    "Time from Deploy to a verified module (AppStatus Received).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12)}),
		transferBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricTransferBytes, Help: "Module bytes acknowledged by devices."}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeployments,
			Help: "Deployment results by result (succeeded, failed) and state."}, []string{"result", "state"}),
		summaries: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricSummaries,
			Help: "deployment.summarized events sent (one per Application module with changed counts, and every resync)."}),
		deployRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeployRequests,
			Help: "deployment.requested events by result (accepted, rejected, error)."}, []string{"result"}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEnrollments,
			Help: "Enrollment requests by result."}, []string{"result"}),
		acceptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricAcceptErrors,
			Help: "Temporary accept failures on the device listener (emfile, enfile, ...); the listener backs off and goes on."}, []string{"error"}),
	}
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBytes, Help: "Frame bytes by direction (TLS payload)."}, []string{"direction"})
	m.bytesIn, m.bytesOut = bytes.WithLabelValues(metricDirectionIn), bytes.WithLabelValues(metricDirectionOut)
	frames := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricFrames, Help: "Frames by direction and message type."}, []string{"direction", "type"})
	for t := range m.framesIn {
		m.framesIn[t] = frames.WithLabelValues(metricDirectionIn, protocol.MessageType(t).String())
	}
	m.framesOut = frames.WithLabelValues(metricDirectionOut, "any")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sessions, m.handshakes, m.closes, m.protocolErrors, bytes, frames,
			m.transferSeconds, m.transferBytes, m.deployments, m.summaries, m.deployRequests, m.enrollments, m.acceptErrors, m.pending, m.maxSessions} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) frameIn(t protocol.MessageType, n int) {
	m.bytesIn.Add(float64(n))
	if int(t) < len(m.framesIn) {
		m.framesIn[t].Inc()
	} else {
		m.framesIn[0].Inc()
	}
}
