// Package events is the CloudEvents contract between Wasmbed's components: the event
// types, their subjects and extension attributes, and the payload of each type.
// docs/events.md describes it for users; docs/events/*.schema.json are generated from it.
//
// Every event is a CloudEvent 1.0 with datacontenttype application/json. Its subject is
// "<namespace>/<name>" of the Application (pipeline and deployment events) or the Device
// (device events). Events carry module digests, never module bytes.
package events

import (
	"time"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/wasmbed/wasmbed/api/digest"
)

// Type is a CloudEvent type of the Wasmbed contract.
type Type string

// The event types, reverse-DNS and named <noun>.<verb-past>.
const (
	// BuildRequested asks the compile function to build an Application's source.
	BuildRequested Type = "dev.wasmbed.build.requested"
	// ModuleBuilt reports a module in the artifact store, ready for validation.
	ModuleBuilt Type = "dev.wasmbed.module.built"
	// BuildFailed reports source that did not compile, with the compiler's diagnostics.
	BuildFailed Type = "dev.wasmbed.build.failed"
	// ModuleValidated reports a module fit for every target board.
	ModuleValidated Type = "dev.wasmbed.module.validated"
	// ModuleRejected reports a module the validator refused, with reasons.
	ModuleRejected Type = "dev.wasmbed.module.rejected"
	// RolloutRequested asks the dispatch function to deploy a module to one rollout
	// step's devices, or to an explicit list of devices (rollback).
	RolloutRequested Type = "dev.wasmbed.rollout.requested"
	// DeploymentRequested asks one gateway to deliver a module to some of its devices.
	DeploymentRequested Type = "dev.wasmbed.deployment.requested"
	// DeploymentDispatched is dispatch's reply: which gateways were asked for which devices.
	DeploymentDispatched Type = "dev.wasmbed.deployment.dispatched"
	// DeploymentSucceeded reports an application running (or removed) on a device.
	DeploymentSucceeded Type = "dev.wasmbed.deployment.succeeded"
	// DeploymentFailed reports an application that failed to transfer, start or run.
	DeploymentFailed Type = "dev.wasmbed.deployment.failed"
	// DeploymentSummarized is one gateway's counts of what its devices report for one
	// module (and generation) of an Application: rollouts are counted from it, not from
	// each device's result.
	DeploymentSummarized Type = "dev.wasmbed.deployment.summarized"
	// DeviceConnected reports a device that opened a session with a gateway.
	DeviceConnected Type = "dev.wasmbed.device.connected"
	// DeviceDisconnected reports a device session that ended, with the reason.
	DeviceDisconnected Type = "dev.wasmbed.device.disconnected"
	// DeviceSeen reports, at a coarse interval, the devices a gateway still holds.
	DeviceSeen Type = "dev.wasmbed.device.seen"
	// DeviceTelemetry carries a record an application published.
	DeviceTelemetry Type = "dev.wasmbed.device.telemetry"
)

// Extension attributes, used by Trigger filters. CloudEvents extension names are
// lower-case letters and digits only.
const (
	// ExtGateway names the gateway ("<namespace>.<name>") a deployment.requested event is
	// for; each gateway's Trigger filters on it.
	ExtGateway = "wasmbedgateway"
	// ExtNamespace is the tenant namespace of the subject.
	ExtNamespace = "wasmbednamespace"
	// ExtPartitionKey is the CloudEvents partitioning extension: events with the same
	// key must keep their order. Gateways set it to the device ("<namespace>/<name>") on
	// every device-scoped event; brokers that order (Kafka, the embedded broker) order
	// by it, and events of different devices flow in parallel.
	ExtPartitionKey = "partitionkey"
	// ExtSteps is "done" on a module.validated event that has been through the
	// Application's extra pipeline steps (spec.steps). For an Application with steps,
	// dispatch and the operator act only on that one.
	ExtSteps = "wasmbedsteps"
	// StepsDone is the value of ExtSteps after the steps.
	StepsDone = "done"
)

// Sources name the component that produced an event.
const (
	SourceOperator = "/wasmbed/operator"
	SourceCompile  = "/wasmbed/functions/compile"
	SourceValidate = "/wasmbed/functions/validate"
	SourceDispatch = "/wasmbed/functions/dispatch"
	// SourceGatewayPrefix is followed by "<namespace>/<name>" of the gateway.
	SourceGatewayPrefix = "/wasmbed/gateways/"
)

// AppRef identifies the Application generation an event is about. Consumers ignore
// events for a generation older than the one they act on, and events for another
// object of the same name (a deleted and re-created Application).
type AppRef struct {
	Namespace  string `json:"namespace" desc:"namespace of the Application"`
	Name       string `json:"name" desc:"name of the Application"`
	Generation int64  `json:"generation" desc:"metadata.generation the event belongs to"`
	UID        string `json:"uid,omitempty" desc:"metadata.uid of the Application; when set, consumers ignore the event if the object of that name has another uid"`
}

// Other reports whether ref names another object than the one with uid: both uids are
// known and they differ.
func (a AppRef) Other(uid string) bool { return a.UID != "" && uid != "" && a.UID != uid }

// Subject returns "<namespace>/<name>".
func (a AppRef) Subject() string { return a.Namespace + "/" + a.Name }

// Source is what to build: source text, or a prebuilt module to fetch.
type Source struct {
	Language string  `json:"language,omitempty" desc:"c, assemblyscript, wat or rust; empty for a prebuilt module"`
	Code     string  `json:"code,omitempty" desc:"source text (at most 256 KiB)"`
	Module   *Module `json:"module,omitempty" desc:"a prebuilt module"`
}

// Module locates a prebuilt module.
type Module struct {
	OCI       string        `json:"oci,omitempty" desc:"OCI reference of a WebAssembly artifact"`
	URL       string        `json:"url,omitempty" desc:"http(s) URL of the module"`
	ConfigMap *ConfigMapKey `json:"configMap,omitempty" desc:"a binaryData key of a ConfigMap in the Application's namespace"`
	Digest    digest.Digest `json:"digest,omitempty" desc:"expected or known sha256 digest, sha256:<hex>; alone, the module is already in the artifact store"`
}

// ConfigMapKey names one key of a ConfigMap in the Application's namespace.
type ConfigMapKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// BuildRequestedData is the payload of dev.wasmbed.build.requested.
type BuildRequestedData struct {
	Application AppRef   `json:"application"`
	Source      Source   `json:"source"`
	Boards      []string `json:"boards" desc:"boards of the target devices, from the board catalogue"`
}

// ModuleBuiltData is the payload of dev.wasmbed.module.built.
type ModuleBuiltData struct {
	Application AppRef        `json:"application"`
	Digest      digest.Digest `json:"digest" desc:"sha256:<hex> of the module in the artifact store"`
	Size        int64         `json:"size" desc:"module size in bytes"`
	Toolchain   string        `json:"toolchain,omitempty" desc:"compiler and version"`
	LogTail     string        `json:"logTail,omitempty" desc:"end of the build log, at most 4 KiB"`
	Boards      []string      `json:"boards" desc:"boards to validate against"`
}

// Diagnostic is one compiler message.
type Diagnostic struct {
	File     string `json:"file" desc:"source file name"`
	Line     int    `json:"line,omitempty" desc:"1-based line"`
	Column   int    `json:"column,omitempty" desc:"1-based column"`
	Severity string `json:"severity" desc:"error, warning or note"`
	Message  string `json:"message" desc:"the compiler's message"`
}

// BuildFailedData is the payload of dev.wasmbed.build.failed.
type BuildFailedData struct {
	Application AppRef       `json:"application"`
	Reason      string       `json:"reason" desc:"CompileError, SourceNotFound, ModuleTooLarge, DigestMismatch or FetchFailed"`
	Message     string       `json:"message" desc:"what went wrong, with file:line for compile errors"`
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`
	LogTail     string       `json:"logTail,omitempty" desc:"end of the build log, at most 4 KiB"`
}

// BoardFit is how a module fits one board.
type BoardFit struct {
	Board       string `json:"board"`
	Fits        bool   `json:"fits"`
	MemoryBytes int64  `json:"memoryBytes" desc:"linear memory the module needs at start"`
	Message     string `json:"message,omitempty"`
}

// ValidationReport is the validator's finding on one module.
type ValidationReport struct {
	Digest  digest.Digest `json:"digest"`
	Size    int64         `json:"size"`
	Imports []string      `json:"imports,omitempty" desc:"imported host functions, module.name"`
	Exports []string      `json:"exports,omitempty"`
	Boards  []BoardFit    `json:"boards,omitempty"`
	Reasons []string      `json:"reasons,omitempty" desc:"why the module was rejected, each a sentence a user can act on"`
	// SmokeTest is what the sandboxed run did.
	SmokeTest string `json:"smokeTest,omitempty" desc:"summary of the sandboxed smoke test"`
}

// ModuleValidatedData is the payload of dev.wasmbed.module.validated.
type ModuleValidatedData struct {
	Application AppRef           `json:"application"`
	Digest      digest.Digest    `json:"digest"`
	Size        int64            `json:"size"`
	Report      ValidationReport `json:"report"`
}

// ModuleRejectedData is the payload of dev.wasmbed.module.rejected.
type ModuleRejectedData struct {
	Application AppRef           `json:"application"`
	Digest      digest.Digest    `json:"digest"`
	Report      ValidationReport `json:"report"`
}

// RolloutRequestedData is the payload of dev.wasmbed.rollout.requested.
type RolloutRequestedData struct {
	Application AppRef        `json:"application"`
	Digest      digest.Digest `json:"digest" desc:"module to deploy"`
	Size        int64         `json:"size,omitempty" desc:"module size in bytes; 0 when not known (the gateway reads it from the artifact store)"`
	Step        int32         `json:"step" desc:"0-based rollout step whose devices get the module"`
	Devices     []string      `json:"devices,omitempty" desc:"explicit device names (rollback); when set, step is ignored"`
	Remove      bool          `json:"remove,omitempty" desc:"remove the application from every target (or the listed devices) instead"`
	Paced       bool          `json:"paced,omitempty" desc:"devices are the step's devices the rollout policy starts now (rate, windows, retries), not a rollback"`
}

// DeploymentRequestedData is the payload of dev.wasmbed.deployment.requested, one per
// gateway: deliver the module to these devices (store-and-forward if offline).
type DeploymentRequestedData struct {
	Application AppRef            `json:"application"`
	Gateway     v1.Ref            `json:"gateway" desc:"<namespace>/<name> of the gateway"`
	Digest      digest.Digest     `json:"digest"`
	Size        int64             `json:"size,omitempty" desc:"module size in bytes; 0 when not known (read it from the artifact store)"`
	ModuleURL   string            `json:"moduleURL,omitempty" desc:"where the gateway fetches the module; empty: its own artifact store"`
	Config      map[string]string `json:"config,omitempty"`
	Manifest    []byte            `json:"manifest,omitempty" desc:"the deployment manifest (docs/protocol.md), base64: what the signature vouches for"`
	Signature   []byte            `json:"signature,omitempty" desc:"the deployment key's ed25519 signature of the manifest, base64"`
	Devices     []string          `json:"devices" desc:"device names in the Application's namespace"`
	Remove      bool              `json:"remove,omitempty" desc:"remove the application from these devices instead"`
	Rollback    bool              `json:"rollback,omitempty" desc:"a rollback after a failed rollout: it outranks every other request of the same generation, so a late step request never undoes it"`
}

// GatewayBatch is one gateway's share of a dispatch.
type GatewayBatch struct {
	Gateway v1.Ref `json:"gateway"`
	Devices int    `json:"devices"`
}

// DeploymentDispatchedData is the payload of dev.wasmbed.deployment.dispatched.
type DeploymentDispatchedData struct {
	Application AppRef         `json:"application"`
	Digest      digest.Digest  `json:"digest"`
	Step        int32          `json:"step"`
	Remove      bool           `json:"remove,omitempty" desc:"the dispatch removed the application"`
	Targeted    int            `json:"targeted" desc:"devices the Application selects"`
	Batches     []GatewayBatch `json:"batches,omitempty"`
	Unassigned  []string       `json:"unassigned,omitempty" desc:"devices with no known gateway yet; dispatched when they connect"`
}

// DeploymentResultData is the payload of dev.wasmbed.deployment.succeeded and
// dev.wasmbed.deployment.failed.
type DeploymentResultData struct {
	Application AppRef         `json:"application"`
	Device      string         `json:"device" desc:"device name, in the Application's namespace"`
	Gateway     v1.Ref         `json:"gateway"`
	Digest      digest.Digest  `json:"digest"`
	State       v1.AppState    `json:"state" desc:"Running, Exited or Removed on success; Failed or Transferring on failure"`
	Message     string         `json:"message,omitempty" desc:"the trap, error code or reason"`
	Failure     v1.FailureType `json:"failure,omitempty" desc:"on failure, where it failed: transfer (the module never reached the device verified), start (it did not start) or trap (it ran, then trapped or reset the device)"`
}

// DeploymentSummaryData is the payload of dev.wasmbed.deployment.summarized: for one
// variant of an Application's desired state on one gateway (its module, generation and
// object), how many of the gateway's devices should run it and what they last reported.
// It is a whole state, not a change: each summary replaces the gateway's previous one
// for the same module, in (epoch, seq) order.
type DeploymentSummaryData struct {
	Application AppRef        `json:"application" desc:"the Application object and the generation of the variant"`
	Gateway     v1.Ref        `json:"gateway"`
	Digest      digest.Digest `json:"digest"`
	Epoch       time.Time     `json:"epoch" desc:"when the gateway process started; a summary of a later epoch, or of the same epoch with a higher seq, is newer"`
	Seq         int64         `json:"seq" desc:"a counter of the gateway's summaries, rising within an epoch"`
	Devices     int           `json:"devices" desc:"devices of this gateway whose desired state is this variant"`
	Succeeded   int           `json:"succeeded" desc:"of them, those that last reported the variant Running or Exited"`
	Failed      int           `json:"failed" desc:"of them, those whose last report of the variant was a failure"`
	// FailuresByType counts Failed by where the deployment failed.
	FailuresByType map[v1.FailureType]int `json:"failuresByType,omitempty" desc:"failed devices by failure type: transfer, start or trap"`
	FirstFailures  []DeviceFailure        `json:"firstFailures,omitempty" desc:"up to 8 failed devices, in name order"`
}

// MaxSummaryFailures bounds DeploymentSummaryData.FirstFailures.
const MaxSummaryFailures = 8

// DeviceFailure is one failed device in a summary.
type DeviceFailure struct {
	Device  string         `json:"device"`
	Failure v1.FailureType `json:"failure"`
	Message string         `json:"message,omitempty"`
}

// AppOnDevice is one application as a device reports it.
type AppOnDevice struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest,omitempty"`
	State  v1.AppState   `json:"state"`
}

// DeviceConnectedData is the payload of dev.wasmbed.device.connected.
type DeviceConnectedData struct {
	Namespace       string        `json:"namespace"`
	Device          string        `json:"device"`
	Gateway         v1.Ref        `json:"gateway"`
	Board           string        `json:"board,omitempty"`
	FirmwareVersion string        `json:"firmwareVersion,omitempty"`
	RAMBytes        int64         `json:"ramBytes,omitempty"`
	FlashBytes      int64         `json:"flashBytes,omitempty"`
	MaxModuleBytes  int64         `json:"maxModuleBytes,omitempty"`
	ABIVersion      int32         `json:"abiVersion,omitempty"`
	Applications    []AppOnDevice `json:"applications,omitempty"`
	Session         string        `json:"session,omitempty" desc:"the gateway's id of the session"`
	Since           time.Time     `json:"since,omitzero" desc:"when the session opened; a device's sessions are ordered by it, so a late report about an older session never overrides a newer one"`
}

// DeviceDisconnectedData is the payload of dev.wasmbed.device.disconnected.
type DeviceDisconnectedData struct {
	Namespace string    `json:"namespace"`
	Device    string    `json:"device"`
	Gateway   v1.Ref    `json:"gateway"`
	Reason    string    `json:"reason" desc:"why the session ended, e.g. heartbeat-timeout, revoked, protocol-error"`
	Session   string    `json:"session,omitempty" desc:"the gateway's id of the session, as in its device.connected"`
	Since     time.Time `json:"since,omitzero" desc:"when the session opened, as in its device.connected"`
}

// DeviceSeenData is the payload of dev.wasmbed.device.seen: devices with live sessions,
// sent every few minutes so lastSeen stays current without per-heartbeat writes.
type DeviceSeenData struct {
	Gateway v1.Ref   `json:"gateway"`
	Devices []v1.Ref `json:"devices" desc:"<namespace>/<name> of each live device"`
}

// DeviceTelemetryData is the payload of dev.wasmbed.device.telemetry.
type DeviceTelemetryData struct {
	Namespace   string `json:"namespace"`
	Device      string `json:"device"`
	Application string `json:"application"`
	Topic       string `json:"topic"`
	Payload     []byte `json:"payload" desc:"the published bytes, base64"`
	DeviceTime  int64  `json:"deviceTimeMs,omitempty" desc:"the application's clock_ms when published"`
}

// Subscriptions lists, per consuming component, the event types it subscribes to:
// each pair is one Knative Trigger (config/500-eventing/) and one trigger of the
// embedded broker. Gateways subscribe to DeploymentRequested filtered on ExtGateway.
var Subscriptions = map[string][]Type{
	"compile":  {BuildRequested},
	"validate": {ModuleBuilt},
	"dispatch": {ModuleValidated, RolloutRequested},
	"operator": {ModuleBuilt, BuildFailed, ModuleValidated, ModuleRejected, DeploymentDispatched,
		DeploymentSucceeded, DeploymentFailed, DeploymentSummarized, DeviceConnected, DeviceDisconnected, DeviceSeen},
	// The console shows live what happens to devices and applications.
	"console": {DeviceConnected, DeviceDisconnected, DeviceTelemetry, DeploymentSucceeded, DeploymentFailed,
		BuildFailed, ModuleBuilt, ModuleValidated, ModuleRejected, DeploymentDispatched},
}
