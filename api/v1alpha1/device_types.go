package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasmbed/wasmbed/api/digest"
)

// DevicePhase is the coarse state of a Device shown in `kubectl get devices`.
// +kubebuilder:validation:Enum=Pending;Enrolled;Connected;Disconnected
type DevicePhase string

// Device phases.
const (
	// DevicePending: the Device exists but has no certificate yet.
	DevicePending DevicePhase = "Pending"
	// DeviceEnrolled: the device holds a certificate but has never connected.
	DeviceEnrolled DevicePhase = "Enrolled"
	// DeviceConnected: the device has a live session with a gateway.
	DeviceConnected DevicePhase = "Connected"
	// DeviceDisconnected: the device was connected and its session ended.
	DeviceDisconnected DevicePhase = "Disconnected"
)

// DeviceEnrollVerb is the RBAC verb on the devices resource that enrolling a Device
// takes: the operator approves a CertificateSigningRequest for a Device only when a
// SubjectAccessReview says its requester may "enroll" that Device (the ClusterRole
// wasmbed-device-enroller in config/200-rbac grants it).
const DeviceEnrollVerb = "enroll"

// DeviceReenrollAnnotation marks a Device for re-enrollment when set to any non-empty
// value (`kubectl annotate device <name> wasmbed.dev/reenroll=true`). While it is set,
// gateways with the Kubernetes registry refuse the device's current key, and the
// operator approves a CertificateSigningRequest for a new key although the Device holds
// a valid certificate. The operator removes it once it has issued that certificate.
const DeviceReenrollAnnotation = "wasmbed.dev/reenroll"

// Device is one microcontroller board of the fleet. Its identity is an X.509
// certificate whose URI SAN is wasmbed://<namespace>/<name>.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wbdev;wbdevs,categories=wasmbed
// +kubebuilder:printcolumn:name="Board",type=string,JSONPath=`.spec.board`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.status.gateway`
// +kubebuilder:printcolumn:name="Last Seen",type=date,JSONPath=`.status.lastSeen`
// +kubebuilder:printcolumn:name="Firmware",type=string,JSONPath=`.status.firmwareVersion`,priority=1
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.status.publicKeyHash`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Device struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DeviceSpec   `json:"spec"`
	Status DeviceStatus `json:"status,omitempty"`
}

// DeviceSpec is what the user wants of a device.
type DeviceSpec struct {
	// Board is the board model, a name from the board catalogue (docs/boards.md).
	// +kubebuilder:validation:Enum=arduino-uno-r4;mps2-an386;nrf52840-nano33ble;stm32f4-discovery;virtual
	Board string `json:"board"`

	// Gateway is the name of the Gateway (same namespace) the device should connect to.
	// Empty lets the device use any gateway.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Gateway string `json:"gateway,omitempty"`

	// Identity says where the device's certificate is kept.
	// +optional
	Identity *DeviceIdentity `json:"identity,omitempty"`

	// Disabled refuses the device: gateways close its session and refuse new ones.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// Emulation asks the board manager to run an emulated board for this Device.
	// +optional
	Emulation *DeviceEmulation `json:"emulation,omitempty"`
}

// DeviceIdentity refers to the Secret that holds the device certificate.
type DeviceIdentity struct {
	// SecretName is an Opaque Secret in the Device's namespace holding the device
	// certificate (tls.crt) and the platform CA (ca.crt), written by the operator when it
	// signs the device's CSR. The private key never leaves the device. Defaults to
	// "<device>-identity".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`
}

// DeviceEmulation configures an emulated board.
type DeviceEmulation struct {
	// Enabled starts an emulated board (QEMU, or Renode where installed) for this Device.
	Enabled bool `json:"enabled"`
	// Firmware overrides the firmware image path known to the board manager.
	// +optional
	Firmware string `json:"firmware,omitempty"`
}

// DeviceStatus is what the platform observed of a device. Gateways report it on
// transitions and at a coarse interval, never per heartbeat.
type DeviceStatus struct {
	// ObservedGeneration is the generation last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase summarises the device's state.
	// +optional
	Phase DevicePhase `json:"phase,omitempty"`

	// Gateway is the gateway holding (or last holding) the device's session.
	// +optional
	Gateway string `json:"gateway,omitempty"`

	// Session is the device's latest session on Gateway. Gateways report sessions
	// opening and closing out of order (a device that moved to another gateway is
	// reported gone by the old one later); reports about an older session are ignored.
	// +optional
	Session *DeviceSession `json:"session,omitempty"`

	// LastSeen is when the device was last heard from, updated every few minutes at most.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`

	// FirmwareVersion is the version the device reported in its Hello.
	// +optional
	FirmwareVersion string `json:"firmwareVersion,omitempty"`

	// Capabilities are what the device reported it can run.
	// +optional
	Capabilities *DeviceCapabilities `json:"capabilities,omitempty"`

	// CertificateNotAfter is when the device certificate expires. It is set once the
	// platform has recorded a certificate for the device, and never cleared.
	// +optional
	CertificateNotAfter *metav1.Time `json:"certificateNotAfter,omitempty"`

	// PublicKeyHash is the key the device enrolled with: "sha256:<hex>" of the
	// SubjectPublicKeyInfo of its certificate, recorded when the certificate is issued.
	// Once a certificate is recorded (certificateNotAfter is set), gateways with the
	// Kubernetes registry admit this key only, and no key when it is empty: clearing it
	// revokes the device without touching the CA.
	// +optional
	// +kubebuilder:validation:Pattern=`^sha256:[a-f0-9]{64}$`
	PublicKeyHash string `json:"publicKeyHash,omitempty"`

	// Applications are the applications on the device, as it last reported them.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Applications []DeviceApplication `json:"applications,omitempty"`

	// Conditions: Enrolled, Connected, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DeviceSession identifies one session of a device on its gateway.
type DeviceSession struct {
	// ID is the gateway's id of the session.
	ID string `json:"id"`
	// Since is when the session opened.
	Since metav1.MicroTime `json:"since"`
}

// DeviceCapabilities are a device's resources as it reports them.
type DeviceCapabilities struct {
	// RAMBytes is the device's RAM.
	RAMBytes int64 `json:"ramBytes,omitempty"`
	// FlashBytes is the device's flash.
	FlashBytes int64 `json:"flashBytes,omitempty"`
	// MaxModuleBytes is the largest module the device accepts.
	MaxModuleBytes int64 `json:"maxModuleBytes,omitempty"`
	// ABIVersion is the Wasmbed application ABI version the device implements.
	ABIVersion int32 `json:"abiVersion,omitempty"`
}

// AppState is the state of an application on a device.
// +kubebuilder:validation:Enum=Pending;Transferring;Received;Running;Stopped;Exited;Failed;Removed
type AppState string

// Application states on a device.
const (
	AppPending      AppState = "Pending"
	AppTransferring AppState = "Transferring"
	AppReceived     AppState = "Received"
	AppRunning      AppState = "Running"
	AppStopped      AppState = "Stopped"
	AppExited       AppState = "Exited"
	AppFailed       AppState = "Failed"
	AppRemoved      AppState = "Removed"
)

// AppStates lists every application state, in life-cycle order.
var AppStates = []AppState{AppPending, AppTransferring, AppReceived, AppRunning, AppStopped, AppExited, AppFailed, AppRemoved}

// Validate returns nil when s is one of AppStates (the comparison is exact: "running"
// is not a state).
func (s AppState) Validate() error {
	for _, known := range AppStates {
		if s == known {
			return nil
		}
	}
	if s == "" {
		return fmt.Errorf("application state is empty")
	}
	return fmt.Errorf("application state %.40q is not one of %v", string(s), AppStates)
}

// DeviceApplication is one application on a device.
type DeviceApplication struct {
	// Name is the Application's name (same namespace).
	Name string `json:"name"`
	// Digest is the module's sha256 digest, "sha256:<hex>".
	// +optional
	Digest digest.Digest `json:"digest,omitempty"`
	// State is the application's state on the device.
	State AppState `json:"state"`
	// Message explains a Failed state (the trap or error).
	// +optional
	Message string `json:"message,omitempty"`
	// Failure is, for a failed deployment, where it failed as the gateway saw it:
	// transfer, start or trap. Empty otherwise, or when the gateway did not say.
	// +optional
	// +kubebuilder:validation:Enum=transfer;start;trap
	Failure FailureType `json:"failure,omitempty"`
	// Generation is the Application generation whose deployment the device last
	// reported on (it says which configuration the device runs).
	// +optional
	Generation int64 `json:"generation,omitempty"`
	// UID is the metadata.uid of the Application the report is about: a deleted and
	// re-created Application of the same name does not count this entry as its own.
	// +optional
	UID string `json:"uid,omitempty"`
	// ReportedAt is when the gateway saw this state (the time of its event). Reports
	// reach the operator out of order; one older than this is ignored. A Removed entry
	// is kept for a few minutes so that a late report cannot bring the app back.
	// +optional
	ReportedAt *metav1.MicroTime `json:"reportedAt,omitempty"`
}

// DeviceList is a list of Devices.
// +kubebuilder:object:root=true
type DeviceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Device `json:"items"`
}
