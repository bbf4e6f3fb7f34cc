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
	// of the targets such as "10%") before the rollout stops. Default 0.
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

	// Conditions: Built, Validated, RolledOut, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
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
}

// ApplicationList is a list of Applications.
// +kubebuilder:object:root=true
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}
