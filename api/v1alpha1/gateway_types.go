package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Gateway is a fleet gateway: the long-lived server that holds devices' mTLS sessions
// and delivers modules to them. The operator runs it as a Deployment and a Service.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wbgw;wbgws,categories=wasmbed
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`
// +kubebuilder:printcolumn:name="Devices",type=integer,JSONPath=`.status.connectedDevices`
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxDevices`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Gateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GatewaySpec   `json:"spec,omitempty"`
	Status GatewayStatus `json:"status,omitempty"`
}

// GatewaySpec configures a gateway.
// +kubebuilder:validation:XValidation:rule="duration(self.heartbeatTimeout) > duration(self.heartbeatInterval)",message="spec.heartbeatTimeout must be longer than spec.heartbeatInterval"
type GatewaySpec struct {
	// Replicas is the number of gateway pods.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Replicas int32 `json:"replicas,omitempty"`

	// Port is the TCP port devices connect to.
	// +optional
	// +kubebuilder:default=8443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// MaxDevices is how many device sessions one gateway pod accepts.
	// +optional
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxDevices int32 `json:"maxDevices,omitempty"`

	// HeartbeatInterval is how often devices send a heartbeat.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	HeartbeatInterval *metav1.Duration `json:"heartbeatInterval,omitempty"`

	// HeartbeatTimeout is how long a silent session lives before the gateway closes it.
	// +optional
	// +kubebuilder:default="90s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	HeartbeatTimeout *metav1.Duration `json:"heartbeatTimeout,omitempty"`

	// TLSSecretName is a kubernetes.io/tls Secret with the gateway's server certificate.
	// Defaults to "<gateway>-tls".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	TLSSecretName string `json:"tlsSecretName,omitempty"`

	// AllowTLS12 also accepts TLS 1.2 (ECDHE-ECDSA with AES-GCM only) for devices whose
	// TLS stack lacks 1.3. TLS 1.3 is always accepted.
	// +optional
	AllowTLS12 bool `json:"allowTLS12,omitempty"`

	// ServiceType is the type of the Service devices connect through.
	// +optional
	// +kubebuilder:default=LoadBalancer
	// +kubebuilder:validation:Enum=LoadBalancer;NodePort;ClusterIP
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`
}

// GatewayStatus is what the platform observed of a gateway.
type GatewayStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Endpoint is the host:port devices connect to.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// ConnectedDevices is the number of live device sessions.
	// +optional
	ConnectedDevices int32 `json:"connectedDevices,omitempty"`
	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GatewayList is a list of Gateways.
// +kubebuilder:object:root=true
type GatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Gateway `json:"items"`
}
