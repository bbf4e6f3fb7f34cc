package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wasmbed/wasmbed/api/digest"
)

// Language is a source language the builder compiles to WebAssembly.
// +kubebuilder:validation:Enum=c;assemblyscript;wat;rust
type Language string

// Source languages.
const (
	LanguageC              Language = "c"
	LanguageAssemblyScript Language = "assemblyscript"
	LanguageWAT            Language = "wat"
	LanguageRust           Language = "rust"
)

// ApplicationPhase is the coarse state of an Application shown in `kubectl get`.
// +kubebuilder:validation:Enum=Pending;Building;Validating;RollingOut;Paused;Running;Failed
type ApplicationPhase string

// Application phases.
const (
	ApplicationPending    ApplicationPhase = "Pending"
	ApplicationBuilding   ApplicationPhase = "Building"
	ApplicationValidating ApplicationPhase = "Validating"
	ApplicationRollingOut ApplicationPhase = "RollingOut"
	ApplicationPaused     ApplicationPhase = "Paused"
	ApplicationRunning    ApplicationPhase = "Running"
	ApplicationFailed     ApplicationPhase = "Failed"
)

// Application is a WebAssembly application and the devices it should run on. The
// platform compiles its source, validates the module against the target boards and
// rolls it out. Module bytes never live in the object: status carries their digest.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wbapp;wbapps,categories=wasmbed
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.build.digest`
// +kubebuilder:printcolumn:name="Progress",type=string,JSONPath=`.status.rollout.progress`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.rollout.failed`,priority=1
// +kubebuilder:printcolumn:name="Rate",type=integer,JSONPath=`.status.rollout.rate.devicesPerMinute`,priority=1
// +kubebuilder:printcolumn:name="Waiting",type=string,JSONPath=`.status.rollout.waitingFor`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ApplicationSpec   `json:"spec"`
	Status ApplicationStatus `json:"status,omitempty"`
}

// ApplicationSpec is what the user wants: which code, on which devices, how to roll out.
type ApplicationSpec struct {
	// Source is the application's code: exactly one of inline, configMap or module.
	Source ApplicationSource `json:"source"`

	// Selector picks the target Devices by label, in the Application's namespace only.
	// An empty selector ({}) selects every Device of the namespace.
	Selector metav1.LabelSelector `json:"selector"`

	// Config is handed to the application through the config_get host function.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 64 && size(self[k]) <= 256)",message="config keys may be at most 64 bytes and values at most 256 bytes"
	Config map[string]string `json:"config,omitempty"`

	// Rollout says how a new module reaches the devices.
	// +optional
	// +kubebuilder:default={strategy: AllAtOnce}
	Rollout RolloutSpec `json:"rollout,omitempty"`

	// Steps are extra pipeline steps run between validation and dispatch, in order;
	// each receives the module.validated event and must reply with it (Knative Sequence).
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Steps []PipelineStep `json:"steps,omitempty"`
}

// ApplicationSource is the code of an application.
// +kubebuilder:validation:XValidation:rule="(has(self.inline) ? 1 : 0) + (has(self.configMap) ? 1 : 0) + (has(self.module) ? 1 : 0) == 1",message="exactly one of source.inline, source.configMap or source.module must be set"
type ApplicationSource struct {
	// Inline is source code kept in the object itself.
	// +optional
	Inline *InlineSource `json:"inline,omitempty"`
	// ConfigMap is source code kept in a ConfigMap of the same namespace.
	// +optional
	ConfigMap *ConfigMapSource `json:"configMap,omitempty"`
	// Module is a prebuilt WebAssembly module.
	// +optional
	Module *ModuleSource `json:"module,omitempty"`
}

// InlineSource is source code inside the Application.
type InlineSource struct {
	// Language is the source language.
	Language Language `json:"language"`
	// Code is the program text (at most 256 KiB).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Code string `json:"code"`
}

// ConfigMapSource is source code in a ConfigMap key.
type ConfigMapSource struct {
	// Language is the source language.
	Language Language `json:"language"`
	// Name is the ConfigMap's name, in the Application's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key is the data key holding the source.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// ModuleSource is a prebuilt module: exactly one of oci, url or configMap.
// +kubebuilder:validation:XValidation:rule="(has(self.oci) ? 1 : 0) + (has(self.url) ? 1 : 0) + (has(self.configMap) ? 1 : 0) == 1",message="exactly one of source.module.oci, source.module.url or source.module.configMap must be set"
type ModuleSource struct {
	// OCI is a reference to a WebAssembly OCI artifact, e.g. registry.example/apps/blink:v1.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	OCI string `json:"oci,omitempty"`
	// URL is an http(s) address to fetch the module from.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('http://')",message="source.module.url must be an http:// or https:// URL"
	URL string `json:"url,omitempty"`
	// ConfigMap is a binaryData key of a ConfigMap in the Application's namespace.
	// +optional
	ConfigMap *ConfigMapKey `json:"configMap,omitempty"`
	// Digest, when set, is the module's expected sha256 ("sha256:<64 hex>"); a module
	// that does not match is refused.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^sha256:[a-f0-9]{64}$`
	Digest digest.Digest `json:"digest,omitempty"`
}

// ConfigMapKey names one key of a ConfigMap in the same namespace.
type ConfigMapKey struct {
	// Name is the ConfigMap's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key is the data or binaryData key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// RolloutStrategy is how a new module version reaches the devices.
// +kubebuilder:validation:Enum=AllAtOnce;Canary
type RolloutStrategy string

// Rollout strategies.
const (
	// RolloutAllAtOnce sends the module to every target device at once.
	RolloutAllAtOnce RolloutStrategy = "AllAtOnce"
	// RolloutCanary sends it in steps, each a percentage of the target devices.
	RolloutCanary RolloutStrategy = "Canary"
)

// RolloutSpec configures rollouts.
// +kubebuilder:validation:XValidation:rule="self.strategy != 'Canary' || (has(self.steps) && size(self.steps) > 0)",message="rollout.steps must list at least one step when rollout.strategy is Canary"
// +kubebuilder:validation:XValidation:rule="!has(self.steps) || [0, 1, 2, 3, 4, 5, 6, 7, 8].all(i, i + 1 >= size(self.steps) || self.steps[i].percent < self.steps[i + 1].percent)",message="rollout.steps percentages must increase from step to step"
// +kubebuilder:validation:XValidation:rule="(has(self.strategy) && self.strategy == 'Canary') || !has(self.steps) || self.steps.all(s, !has(s.requireApproval) || !s.requireApproval)",message="rollout.steps[].requireApproval needs strategy Canary (an AllAtOnce rollout has no steps to hold)"
type RolloutSpec struct {
	// Strategy is AllAtOnce (default) or Canary.
	// +kubebuilder:default=AllAtOnce
	Strategy RolloutStrategy `json:"strategy,omitempty"`

	// Steps are the Canary steps, each the cumulative percentage of target devices that
	// should run the new module, with an optional pause after it. The last step is
	// normally 100.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Steps []CanaryStep `json:"steps,omitempty"`

	// MaxFailures is how many devices of the rollout may fail (a count, or a percentage
	// of the targets such as "10%") before the rollout stops. Default 0; with
	// abortCriteria, 0 means no limit beyond the criteria.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^[0-9]+%$')",message="rollout.maxFailures must be a non-negative count or a percentage such as \"10%\""
	MaxFailures *intstr.IntOrString `json:"maxFailures,omitempty"`

	// AutoRollback redeploys the previous good module to the devices that got the new
	// one when the rollout stops on failures. Default true.
	// +optional
	// +kubebuilder:default=true
	AutoRollback *bool `json:"autoRollback,omitempty"`

	// Paused holds the rollout at its current step until set back to false.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// Abort stops the current rollout and, with autoRollback, restores the previous good
	// module. Clear it (or change the source) to roll out again.
	// +optional
	Abort bool `json:"abort,omitempty"`

	// Rate limits how fast devices start the new module: a constant number of devices
	// per minute, or a rate that grows by a factor each time enough devices succeeded
	// or started at the current rate. Unset: every device of a step starts at once.
	// +optional
	Rate *RolloutRate `json:"rate,omitempty"`

	// AbortCriteria stop the rollout (and roll back with autoRollback) when the devices
	// that failed with one failure type reach a percentage of the finished devices, once
	// at least minFinished devices finished. With criteria, maxFailures applies only when
	// set above 0.
	// +optional
	// +kubebuilder:validation:MaxItems=5
	// +listType=map
	// +listMapKey=failureType
	AbortCriteria []AbortCriterion `json:"abortCriteria,omitempty"`

	// Retries start a device again after a failure of a given type, up to a number of
	// attempts, waiting backoff before the first retry and twice as long before each
	// next one (at most 1h). A device counts as failed once its retries are spent.
	// +optional
	// +kubebuilder:validation:MaxItems=5
	// +listType=map
	// +listMapKey=failureType
	Retries []RetryPolicy `json:"retries,omitempty"`

	// DeviceTimeout is how long a started device may take to report the module Running
	// (or Exited); one that does not fails with the failure type "timeout". Unset: no limit.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('168h')",message="rollout.deviceTimeout must be between 1s and 168h"
	DeviceTimeout *metav1.Duration `json:"deviceTimeout,omitempty"`

	// Schedule bounds when devices may start: not before notBefore, and what happens to a
	// rollout not done by endBy.
	// +optional
	Schedule *RolloutSchedule `json:"schedule,omitempty"`

	// Maintenance lists recurring windows, in a time zone, outside which no device starts
	// a new module. Devices already started finish; the rollout waits for the next window.
	// +optional
	Maintenance *MaintenanceWindows `json:"maintenance,omitempty"`
}

// FailureType classifies why a device did not run the module of a rollout.
//   - transfer: the module did not reach the device whole and verified (too large, no
//     space, a bad signature or digest, the transfer stalled);
//   - start: the device holds the module but could not start it (instantiation failed);
//   - trap: the module ran and then trapped, faulted or reset the device;
//   - timeout: the device did not report Running within spec.rollout.deviceTimeout;
//   - any (criteria and retries only): every type.
type FailureType string

// Failure types.
const (
	FailureTransfer FailureType = "transfer"
	FailureStart    FailureType = "start"
	FailureTrap     FailureType = "trap"
	FailureTimeout  FailureType = "timeout"
	FailureAny      FailureType = "any"
)

// RolloutRate is how many devices start the new module per minute.
type RolloutRate struct {
	// DevicesPerMinute is the constant rate, or the starting rate with growth.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	DevicesPerMinute int32 `json:"devicesPerMinute"`
	// Growth makes the rate exponential.
	// +optional
	Growth *RateGrowth `json:"growth,omitempty"`
}

// RateGrowth multiplies the rate by factor each time its condition is met at the
// current rate: afterSucceeded devices succeeded, or afterStarted devices started.
// +kubebuilder:validation:XValidation:rule="has(self.afterSucceeded) != has(self.afterStarted)",message="rollout.rate.growth needs exactly one of afterSucceeded or afterStarted"
type RateGrowth struct {
	// Factor multiplies the rate, a decimal between 1.1 and 10, e.g. "2" or "1.5".
	// +kubebuilder:validation:Pattern=`^[0-9]{1,2}(\.[0-9]{1,3})?$`
	// +kubebuilder:validation:XValidation:rule="double(self) >= 1.1 && double(self) <= 10.0",message="rollout.rate.growth.factor must be between 1.1 and 10"
	Factor string `json:"factor"`
	// AfterSucceeded grows the rate once this many devices succeeded at the current rate.
	// +optional
	// +kubebuilder:validation:Minimum=1
	AfterSucceeded *int32 `json:"afterSucceeded,omitempty"`
	// AfterStarted grows the rate once this many devices started at the current rate.
	// +optional
	// +kubebuilder:validation:Minimum=1
	AfterStarted *int32 `json:"afterStarted,omitempty"`
	// MaxDevicesPerMinute caps the rate. Default 1000.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxDevicesPerMinute *int32 `json:"maxDevicesPerMinute,omitempty"`
}

// AbortCriterion stops a rollout when too many finished devices failed one way.
type AbortCriterion struct {
	// FailureType is transfer, start, trap, timeout or any.
	// +kubebuilder:validation:Enum=transfer;start;trap;timeout;any
	FailureType FailureType `json:"failureType"`
	// ThresholdPercent is the share of finished devices (succeeded or failed for good)
	// that, failed with this type, stops the rollout.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	ThresholdPercent int32 `json:"thresholdPercent"`
	// MinFinished is how many devices must have finished before the criterion applies.
	// Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MinFinished int32 `json:"minFinished,omitempty"`
}

// RetryPolicy starts a device again after a failure of one type.
type RetryPolicy struct {
	// FailureType is transfer, start, trap, timeout or any; a specific type wins over any.
	// +kubebuilder:validation:Enum=transfer;start;trap;timeout;any
	FailureType FailureType `json:"failureType"`
	// Attempts is how many times a device is retried after failing this way.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Attempts int32 `json:"attempts"`
	// Backoff is the wait before the first retry, doubled for each next one. Default 30s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	Backoff *metav1.Duration `json:"backoff,omitempty"`
}

// EndBehavior is what a rollout does when schedule.endBy passes before it is done.
// +kubebuilder:validation:Enum=Cancel;Rollback;Continue
type EndBehavior string

// End behaviours.
const (
	// EndCancel stops starting devices and keeps what runs.
	EndCancel EndBehavior = "Cancel"
	// EndRollback stops and restores the previous good module on the devices that got the new one.
	EndRollback EndBehavior = "Rollback"
	// EndContinue goes on and reports the rollout overdue.
	EndContinue EndBehavior = "Continue"
)

// RolloutSchedule bounds a rollout in time.
// +kubebuilder:validation:XValidation:rule="!has(self.notBefore) || !has(self.endBy) || timestamp(self.notBefore) < timestamp(self.endBy)",message="rollout.schedule.endBy must be after rollout.schedule.notBefore"
type RolloutSchedule struct {
	// NotBefore: no device starts before this time (RFC 3339).
	// +optional
	NotBefore *metav1.Time `json:"notBefore,omitempty"`
	// EndBy is when the rollout should be done.
	// +optional
	EndBy *metav1.Time `json:"endBy,omitempty"`
	// EndBehavior is Cancel (default: stop starting devices, keep what runs), Rollback or
	// Continue (go on, reported overdue).
	// +optional
	// +kubebuilder:default=Cancel
	EndBehavior EndBehavior `json:"endBehavior,omitempty"`
}

// MaintenanceWindows are recurring windows in one time zone.
type MaintenanceWindows struct {
	// TimeZone is an IANA time zone name such as "Europe/Berlin". Default UTC.
	// +optional
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == 'UTC' || (self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$') && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0)",message="rollout.maintenance.timeZone must be an IANA time zone such as Europe/Berlin"
	TimeZone string `json:"timeZone,omitempty"`
	// Windows: a device starts the new module only while one of them is open.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Windows []MaintenanceWindow `json:"windows"`
}

// Weekday is a day of the week, Mon to Sun.
// +kubebuilder:validation:Enum=Mon;Tue;Wed;Thu;Fri;Sat;Sun
type Weekday string

// MaintenanceWindow opens at start on each of days (every day when empty), local time,
// for duration.
type MaintenanceWindow struct {
	// Days the window opens on; empty means every day.
	// +optional
	// +kubebuilder:validation:MaxItems=7
	// +listType=set
	Days []Weekday `json:"days,omitempty"`
	// Start is the local opening time, "HH:MM" (24 h).
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	Start string `json:"start"`
	// Duration is how long the window stays open, from 1m to 168h, e.g. "4h".
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('168h')",message="rollout.maintenance.windows[].duration must be between 1m and 168h"
	Duration metav1.Duration `json:"duration"`
}

// CanaryStep is one step of a Canary rollout.
type CanaryStep struct {
	// Percent is the cumulative share of target devices running the new module after
	// this step.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
	// Pause is how long to wait after the step succeeds before the next one, e.g. "30s".
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	Pause *metav1.Duration `json:"pause,omitempty"`
	// RequireApproval holds the step before it starts until a user approves it: the
	// annotation wasmbed.dev/approve-step set to the step's number (1-based), or the
	// console's Approve button.
	// +optional
	RequireApproval bool `json:"requireApproval,omitempty"`
}

// PipelineStep is an extra step in the Application's pipeline: a Knative-addressable
// object or a URI that receives the module.validated CloudEvent and replies with it.
// +kubebuilder:validation:XValidation:rule="has(self.ref) != has(self.uri)",message="exactly one of steps[].ref or steps[].uri must be set"
type PipelineStep struct {
	// Ref is an addressable object, e.g. a Knative Service.
	// +optional
	Ref *StepReference `json:"ref,omitempty"`
	// URI is an absolute http(s) URL.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('http://')",message="steps[].uri must be an http:// or https:// URL"
	URI string `json:"uri,omitempty"`
}

// StepReference points at an addressable object in the Application's namespace.
type StepReference struct {
	// APIVersion of the referent, e.g. serving.knative.dev/v1.
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`
	// Kind of the referent, e.g. Service.
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ApplicationStatus is what the platform observed of an Application.
type ApplicationStatus struct {
	// ObservedGeneration is the generation whose module status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase summarises where the Application stands.
	// +optional
	Phase ApplicationPhase `json:"phase,omitempty"`

	// Build is the last successful build of the current generation.
	// +optional
	Build *BuildStatus `json:"build,omitempty"`

	// Validation is the validator's report on the current module.
	// +optional
	Validation *ValidationStatus `json:"validation,omitempty"`

	// Rollout is the progress of the current rollout.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`

	// PreviousGoodDigest is the last module that completed a rollout; automatic
	// rollback returns to it.
	// +optional
	PreviousGoodDigest digest.Digest `json:"previousGoodDigest,omitempty"`

	// GatewayReports are what each gateway reports of this Application's devices, per
	// module: how many should run it and how many run it or failed. A rollout counts
	// its devices from them rather than from every Device (RATIONALE.md, "Where a
	// device's application state lives"). The newest generation of a module wins.
	// +optional
	// +listType=map
	// +listMapKey=gateway
	// +listMapKey=digest
	// +kubebuilder:validation:MaxItems=64
	GatewayReports []GatewayReport `json:"gatewayReports,omitempty"`

	// Conditions: Built, Validated, RolledOut, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GatewayReport is one gateway's count of the devices whose desired state is one module
// (and generation) of the Application, from its dev.wasmbed.deployment.summarized events.
type GatewayReport struct {
	// Gateway is the Gateway, "<namespace>/<name>".
	// +kubebuilder:validation:MaxLength=253
	Gateway string `json:"gateway"`
	// Digest is the module.
	Digest digest.Digest `json:"digest"`
	// Generation is the Application generation the gateway's desired state holds.
	Generation int64 `json:"generation"`
	// Devices is how many of the gateway's devices should run it.
	Devices int32 `json:"devices"`
	// Succeeded is how many of them last reported it Running or Exited.
	Succeeded int32 `json:"succeeded"`
	// Failed is how many of them last reported a failure of it.
	Failed int32 `json:"failed"`
	// FailuresByType counts Failed by failure type.
	// +optional
	FailuresByType map[FailureType]int32 `json:"failuresByType,omitempty"`
	// FirstFailure is "<device>: <message>" of the first failed device by name.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	FirstFailure string `json:"firstFailure,omitempty"`
	// Epoch and Seq order one gateway's reports: a later epoch (the gateway restarted),
	// or the same epoch and a higher seq, is newer.
	Epoch metav1.Time `json:"epoch"`
	Seq   int64       `json:"seq"`
	// ReportedAt is when the operator recorded it.
	// +optional
	ReportedAt *metav1.Time `json:"reportedAt,omitempty"`
}

// BuildStatus describes a built module.
type BuildStatus struct {
	// Digest is the module's sha256, "sha256:<hex>".
	Digest digest.Digest `json:"digest"`
	// Size is the module's size in bytes.
	Size int64 `json:"size"`
	// Toolchain names the compiler and its version.
	// +optional
	Toolchain string `json:"toolchain,omitempty"`
	// LogTail is the end of the build log (at most 4 KiB).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	LogTail string `json:"logTail,omitempty"`
	// SourceHash is the sha256 of spec.source this module was built from; a new
	// generation with the same source reuses the module instead of building again.
	// +optional
	SourceHash string `json:"sourceHash,omitempty"`
}

// ValidationStatus is the validator's report.
type ValidationStatus struct {
	// Digest is the module the report is about.
	Digest digest.Digest `json:"digest"`
	// Passed is true when the module may run on every target board.
	Passed bool `json:"passed"`
	// Reasons say, when Passed is false, what to change.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Reasons []string `json:"reasons,omitempty"`
	// Boards is the fit of the module on each target board.
	// +optional
	// +listType=map
	// +listMapKey=board
	Boards []BoardFit `json:"boards,omitempty"`
}

// BoardFit is how a module fits one board's budget.
type BoardFit struct {
	// Board is the catalogue name.
	Board string `json:"board"`
	// Fits is true when the module's size and memory are within the board's budget.
	Fits bool `json:"fits"`
	// MemoryBytes is the linear memory the module needs.
	MemoryBytes int64 `json:"memoryBytes"`
	// Message explains a misfit.
	// +optional
	Message string `json:"message,omitempty"`
}

// RolloutStatus is the progress of a rollout.
type RolloutStatus struct {
	// Digest is the module being rolled out.
	Digest digest.Digest `json:"digest"`
	// Step is the index of the current Canary step (0 for AllAtOnce).
	Step int32 `json:"step"`
	// Steps is the number of steps.
	Steps int32 `json:"steps"`
	// Targeted is the number of devices the Application selects.
	Targeted int32 `json:"targeted"`
	// Dispatched is the number of devices sent the module so far.
	Dispatched int32 `json:"dispatched"`
	// Succeeded is the number of devices running the module.
	Succeeded int32 `json:"succeeded"`
	// Failed is the number of devices that reported a failure.
	Failed int32 `json:"failed"`
	// Progress is "succeeded/targeted", for kubectl.
	Progress string `json:"progress"`
	// PausedUntil is when a Canary pause ends.
	// +optional
	PausedUntil *metav1.Time `json:"pausedUntil,omitempty"`
	// RolledBack is true when the rollout stopped and the previous module was restored.
	// +optional
	RolledBack bool `json:"rolledBack,omitempty"`
	// Generation is the Application generation the rollout delivers: devices count as
	// done when they report the digest for this generation or a later one.
	// +optional
	Generation int64 `json:"generation,omitempty"`
	// ConfigHash is the sha256 of spec.config the rollout delivers; a config change
	// restarts the rollout with the same module.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
	// RequestedAt is when the current step was last requested from dispatch.
	// +optional
	RequestedAt *metav1.Time `json:"requestedAt,omitempty"`
	// FirstFailure is the message of the first device that failed, for a quick look.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	FirstFailure string `json:"firstFailure,omitempty"`

	// WaitingFor says what the rollout waits for now, e.g. "waiting for approval of step
	// 2", "outside the maintenance window until 2026-12-08T22:00:00+01:00" or "rate
	// limit: next device at ...". Empty when devices are starting or it is done.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	WaitingFor string `json:"waitingFor,omitempty"`
	// NextActionAt is when the rollout next moves by itself (a window opens, the rate
	// lets the next device start, a retry is due).
	// +optional
	NextActionAt *metav1.Time `json:"nextActionAt,omitempty"`
	// ApprovedStep is the highest step (1-based) approved for this rollout.
	// +optional
	ApprovedStep int32 `json:"approvedStep,omitempty"`
	// Started is how many devices the policy started (retries not counted).
	// +optional
	Started int32 `json:"started,omitempty"`
	// Retries is how many retries were requested.
	// +optional
	Retries int32 `json:"retries,omitempty"`
	// FailuresByType counts the devices that failed for good, by failure type.
	// +optional
	FailuresByType map[FailureType]int32 `json:"failuresByType,omitempty"`
	// Rate is the policy's rate state: the current rate and when the next device may start.
	// +optional
	Rate *RateStatus `json:"rate,omitempty"`
	// Overdue is true when schedule.endBy passed and endBehavior is Continue.
	// +optional
	Overdue bool `json:"overdue,omitempty"`
	// Devices are the devices the policy started that have not succeeded: in flight,
	// waiting for a retry, or failed for good (at most 1000; no device starts while the
	// list is full).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=1000
	Devices []RolloutDevice `json:"devices,omitempty"`
}

// RateStatus is the state of a rate-limited rollout.
type RateStatus struct {
	// DevicesPerMinute is the current rate.
	DevicesPerMinute int32 `json:"devicesPerMinute"`
	// NextStartAt is the earliest time the next device may start (microseconds: devices
	// may start a few milliseconds apart).
	// +optional
	NextStartAt *metav1.MicroTime `json:"nextStartAt,omitempty"`
	// BaseSucceeded and BaseStarted are the succeeded and started counts when the current
	// rate began; growth compares against them.
	// +optional
	BaseSucceeded int32 `json:"baseSucceeded,omitempty"`
	// +optional
	BaseStarted int32 `json:"baseStarted,omitempty"`
}

// RolloutDevice is a device the rollout policy started that has not succeeded yet.
type RolloutDevice struct {
	// Name is the Device's name.
	Name string `json:"name"`
	// StartedAt is when the device was last asked to start the module (operator's clock).
	StartedAt metav1.MicroTime `json:"startedAt"`
	// Attempts is how many times it was asked (1 + retries).
	Attempts int32 `json:"attempts"`
	// Failure is the type of its last failure, empty while in flight.
	// +optional
	Failure FailureType `json:"failure,omitempty"`
	// FailedReport is the reportedAt of the failure report being retried, so that only a
	// newer report counts for the retry.
	// +optional
	FailedReport *metav1.MicroTime `json:"failedReport,omitempty"`
	// RetryAt is when the next retry is due.
	// +optional
	RetryAt *metav1.MicroTime `json:"retryAt,omitempty"`
	// Final is true when the device failed for good (its retries are spent).
	// +optional
	Final bool `json:"final,omitempty"`
	// Message is the last failure's message.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Message string `json:"message,omitempty"`
}

// ApplicationList is a list of Applications.
// +kubebuilder:object:root=true
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}
