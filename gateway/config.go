package gateway

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"time"

	"github.com/wasmbed/wasmbed/internal/eventauth"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// Defaults of Config, in one place.
const (
	// DefaultAddr is the device (mTLS) listen address.
	DefaultAddr = ":8443"
	// DefaultHandshakeTimeout bounds the TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxSessions bounds the sessions a gateway holds.
	DefaultMaxSessions = 100_000
	// DefaultRegistryTimeout bounds a registry's Check.
	DefaultRegistryTimeout = 5 * time.Second
	// DefaultMaxPending bounds the connections between accept and a checked Hello.
	DefaultMaxPending = 1024
	// DefaultMaxPendingPerSource bounds them per source address (IPv4, or IPv6 /64).
	// Devices behind one NAT share an address, so it is generous.
	DefaultMaxPendingPerSource = 64
	// DefaultWriteQueue is how many frames may wait for one session's writer before
	// the session is closed as a slow consumer.
	DefaultWriteQueue = 128
	// DefaultWriteTimeout bounds one write to a device.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultTransferTimeout bounds the time a transfer may go without progress.
	DefaultTransferTimeout = 60 * time.Second
	// DefaultSeenInterval is the period of device.seen events.
	DefaultSeenInterval = 3 * time.Minute
	// DefaultName is the gateway's "<namespace>/<name>" when none is configured.
	DefaultName = "wasmbed-system/gateway"
	// DefaultLogLines is how many log lines the gateway keeps per device.
	DefaultLogLines = 32
)

// Config is the gateway's configuration. It is immutable: each With method returns a
// modified copy. Build one with NewConfig.
type Config struct {
	addr                string
	caPool              *x509.CertPool
	cert                tls.Certificate
	allowTLS12          bool
	handshakeTimeout    time.Duration
	helloTimeout        time.Duration
	heartbeatInterval   time.Duration
	heartbeatTimeout    time.Duration
	writeTimeout        time.Duration
	transferTimeout     time.Duration
	seenInterval        time.Duration
	summaryInterval     time.Duration
	summaryResync       time.Duration
	maxSessions         int
	maxPending          int
	maxPendingPerSource int
	sourceRate          float64
	sourceBurst         int
	fileLimit           uint64
	httpTimeouts        HTTPTimeouts
	apiTLS              *tls.Config
	writeQueue          int
	maxFrame            int
	logLines            int
	name                string
	eventAuth           *eventauth.Policy
	store               artifacts.Store
	fetch               artifacts.ClientConfig
	deploymentKey       ed25519.PublicKey
	sink                Sink
	registry            Registry
	registryTimeout     time.Duration
	desired             DesiredStore
	logger              *slog.Logger
	registerer          prometheus.Registerer
}

// NewConfig returns the default configuration for a gateway presenting cert and
// accepting devices whose client certificates verify against caPool.
func NewConfig(caPool *x509.CertPool, cert tls.Certificate) Config {
	return Config{
		addr:                DefaultAddr,
		caPool:              caPool,
		cert:                cert,
		handshakeTimeout:    DefaultHandshakeTimeout,
		helloTimeout:        protocol.HelloTimeout,
		heartbeatInterval:   protocol.DefaultHeartbeatInterval,
		heartbeatTimeout:    protocol.DefaultHeartbeatTimeout,
		writeTimeout:        DefaultWriteTimeout,
		transferTimeout:     DefaultTransferTimeout,
		seenInterval:        DefaultSeenInterval,
		summaryInterval:     DefaultSummaryInterval,
		summaryResync:       DefaultSummaryResync,
		maxSessions:         DefaultMaxSessions,
		maxPending:          DefaultMaxPending,
		maxPendingPerSource: DefaultMaxPendingPerSource,
		httpTimeouts:        DefaultHTTPTimeouts,
		registryTimeout:     DefaultRegistryTimeout,
		writeQueue:          DefaultWriteQueue,
		maxFrame:            protocol.HardMaxFrame,
		logLines:            DefaultLogLines,
		name:                DefaultName,
	}
}

// WithAddr sets the device listen address used by ListenAndServe.
func (c Config) WithAddr(addr string) Config { c.addr = addr; return c }

// WithTLS12 also accepts TLS 1.2 with ECDHE-ECDSA-AES-GCM, for device TLS stacks
// without TLS 1.3. TLS 1.3 is the minimum otherwise.
func (c Config) WithTLS12(allow bool) Config { c.allowTLS12 = allow; return c }

// WithHandshakeTimeout bounds the TLS handshake.
func (c Config) WithHandshakeTimeout(d time.Duration) Config { c.handshakeTimeout = d; return c }

// WithHelloTimeout bounds the wait for Hello after the handshake (10 s by protocol).
func (c Config) WithHelloTimeout(d time.Duration) Config { c.helloTimeout = d; return c }

// WithHeartbeat sets the interval announced in Welcome and the silence after which a
// session is closed. Both are sent in whole seconds (at least 1) unless shorter than a
// second, which only tests use.
func (c Config) WithHeartbeat(interval, timeout time.Duration) Config {
	c.heartbeatInterval, c.heartbeatTimeout = interval, timeout
	return c
}

// WithWriteTimeout bounds one write to a device; a write that times out closes the
// session as a slow consumer.
func (c Config) WithWriteTimeout(d time.Duration) Config { c.writeTimeout = d; return c }

// WithTransferTimeout bounds the time a module transfer may make no progress.
func (c Config) WithTransferTimeout(d time.Duration) Config { c.transferTimeout = d; return c }

// WithSummaries sets how long changed counts wait before their deployment.summarized
// event (interval) and how often every summary is sent again (resync); zero resync never.
func (c Config) WithSummaries(interval, resync time.Duration) Config {
	c.summaryInterval, c.summaryResync = interval, resync
	return c
}

// WithSeenInterval sets the period of device.seen events.
func (c Config) WithSeenInterval(d time.Duration) Config { c.seenInterval = d; return c }

// WithMaxSessions bounds the number of sessions; further devices are refused.
func (c Config) WithMaxSessions(n int) Config { c.maxSessions = n; return c }

// WithMaxPending bounds the connections that are unauthenticated: accepted, and not
// yet past the TLS handshake, the registry check and Hello. Further connections are
// closed at once (max-pending).
func (c Config) WithMaxPending(n int) Config { c.maxPending = n; return c }

// WithMaxPendingPerSource bounds the unauthenticated connections of one source
// address (an IPv4 address, or an IPv6 /64); further ones are closed at once
// (source-pending). 0 turns the limit off.
func (c Config) WithMaxPendingPerSource(n int) Config { c.maxPendingPerSource = n; return c }

// WithSourceRate limits how fast one source address (as WithMaxPendingPerSource) may
// open connections: a token bucket of burst tokens refilled at perSecond. Connections
// over the rate are closed at once (source-rate). A perSecond of 0 (the default) turns
// it off: many devices may share one NAT address, and they all reconnect together
// after a gateway restart.
func (c Config) WithSourceRate(perSecond float64, burst int) Config {
	c.sourceRate, c.sourceBurst = perSecond, burst
	return c
}

// WithFileLimit sets the number of file descriptors the session limit must fit in
// (see Limits); 0, the default, reads the process's soft RLIMIT_NOFILE in New.
func (c Config) WithFileLimit(n uint64) Config { c.fileLimit = n; return c }

// WithHTTPTimeouts sets the timeouts and header limit of the HTTP servers (ServeAPI,
// ServeOps); every field must be positive.
func (c Config) WithHTTPTimeouts(t HTTPTimeouts) Config { c.httpTimeouts = t; return c }

// WithAPITLS makes ServeAPI serve over TLS with tc (for /enroll outside a cluster).
func (c Config) WithAPITLS(tc *tls.Config) Config { c.apiTLS = tc; return c }

// WithWriteQueue sets how many frames may wait for a session's writer.
func (c Config) WithWriteQueue(n int) Config { c.writeQueue = n; return c }

// WithMaxFrame sets the gateway's body limit offered in Welcome (512..16384).
func (c Config) WithMaxFrame(n int) Config { c.maxFrame = n; return c }

// WithLogLines sets how many device log lines the gateway keeps per device.
func (c Config) WithLogLines(n int) Config { c.logLines = n; return c }

// WithEventAuth sets who may send events to the deploy API: in a cluster, the
// gateway's own Trigger (eventauth.GatewayAllow). Without it every event is refused.
func (c Config) WithEventAuth(p *eventauth.Policy) Config { c.eventAuth = p; return c }

// WithName sets the gateway's "<namespace>/<name>", used in events and to check that a
// deployment request is meant for this gateway.
func (c Config) WithName(name string) Config { c.name = name; return c }

// WithArtifacts sets the store modules are read from, by digest.
func (c Config) WithArtifacts(s artifacts.Store) Config { c.store = s; return c }

// WithFetch says how the gateway fetches a module a deployment request names by
// moduleURL and which hosts it may fetch from (fetch's allow-list, see
// artifacts.AllowList). The default admits no host: a moduleURL is refused unless
// the module is already in the artifact store. To let a moduleURL name the artifact
// store's own registry, list that registry.
func (c Config) WithFetch(fetch artifacts.ClientConfig) Config { c.fetch = fetch; return c }

// WithDeploymentKey sets the platform's deployment verification key: every deployment
// request must then carry a manifest it signed for exactly that request (namespace,
// name, uid, generation, module and configuration), or it is refused before anything
// is recorded. Without a key, manifests are passed to devices unchecked.
func (c Config) WithDeploymentKey(key ed25519.PublicKey) Config { c.deploymentKey = key; return c }

// WithSink sets where events go; nil drops them.
func (c Config) WithSink(s Sink) Config { c.sink = s; return c }

// WithRegistry sets which devices may connect; nil allows every device whose
// certificate verifies. A registry that cannot tell (an error other than
// ErrNotAllowed, or no answer within WithRegistryTimeout) refuses the device
// (registry-unavailable): the gateway fails closed.
func (c Config) WithRegistry(r Registry) Config { c.registry = r; return c }

// WithRegistryTimeout bounds the registry's Check of a connecting device (5 s).
func (c Config) WithRegistryTimeout(d time.Duration) Config { c.registryTimeout = d; return c }

// WithDesired sets the desired-state store; nil keeps desired state in memory only.
func (c Config) WithDesired(d DesiredStore) Config { c.desired = d; return c }

// WithLogger sets the structured logger.
func (c Config) WithLogger(l *slog.Logger) Config { c.logger = l; return c }

// WithRegisterer registers the gateway's metrics; when it is also a
// prometheus.Gatherer, the HTTP handler serves them on /metrics.
func (c Config) WithRegisterer(r prometheus.Registerer) Config { c.registerer = r; return c }

// seconds rounds d to whole seconds for Welcome, at least 1.
func seconds(d time.Duration) uint32 {
	s := uint32((d + time.Second/2) / time.Second)
	return max(s, 1)
}
