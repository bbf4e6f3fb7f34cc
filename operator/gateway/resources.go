package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// The gateway container's command line, which cmd/gateway reads. Every value comes
// from the Gateway's spec, with the CRD's defaults when a field is unset.
const (
	// FlagName is the gateway's "<namespace>/<name>", used in its events and in
	// Device status.gateway.
	FlagName = "--name"
	// FlagAddr is the device (mTLS) listen address, ":<spec.port>".
	FlagAddr = "--addr"
	// FlagHTTPAddr is the deploy API's listen address (deployment requests, device
	// logs), ":8080".
	FlagHTTPAddr = "--http-addr"
	// FlagOpsAddr is the listen address of /healthz, /readyz and /metrics, ":9090".
	FlagOpsAddr = "--ops-addr"
	// FlagHeartbeatInterval and FlagHeartbeatTimeout are spec.heartbeatInterval and
	// spec.heartbeatTimeout as Go durations.
	FlagHeartbeatInterval = "--heartbeat"
	FlagHeartbeatTimeout  = "--heartbeat-timeout"
	// FlagMaxSessions is spec.maxDevices.
	FlagMaxSessions = "--max-sessions"
	// FlagTLSDir is the directory with tls.crt, tls.key and ca.crt from the TLS Secret.
	FlagTLSDir = "--tls-dir"
	// FlagAllowTLS12 is present when spec.allowTLS12 is true.
	FlagAllowTLS12 = "--tls12"
	// FlagRegistry is "kube": the gateway admits a device only while its Device
	// exists and is not disabled, and refuses every device while it cannot read them.
	FlagRegistry = "--registry"
	// FlagStateDir is where the gateway keeps its desired state, StateDir.
	FlagStateDir = "--state-dir"

	// TLSDir is where the TLS Secret is mounted.
	TLSDir = "/etc/wasmbed/tls"
	// StateDir is the gateway's state directory, an emptyDir: desired state survives
	// a container restart; after a rescheduling, dispatch's retries and the devices'
	// own reports rebuild it.
	StateDir = "/var/lib/wasmbed-gateway"
	// LabelGateway is set to the Gateway's name on everything made for it, and selects
	// its pods.
	LabelGateway = "wasmbed.dev/gateway"
	// containerName is the gateway container's name.
	containerName = "gateway"
	// portNameDevices, portNameHTTP and portNameOps name the container and Service
	// ports (and config/'s NetworkPolicy for gateways).
	portNameDevices = "devices"
	portNameHTTP    = "http"
	portNameOps     = "ops"
)

// Spec defaults, as in the CRD, for objects the apiserver did not default (e.g. a
// Gateway built in a test without a round trip).
const (
	defaultPort              = 8443
	defaultMaxDevices        = 10000
	defaultHeartbeatInterval = 30 * time.Second
	defaultHeartbeatTimeout  = 90 * time.Second
)

func portOf(gw *v1.Gateway) int32 {
	if gw.Spec.Port == 0 {
		return defaultPort
	}
	return gw.Spec.Port
}

func duration(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// tlsSecretName is spec.tlsSecretName or "<gateway>-tls".
func tlsSecretName(gw *v1.Gateway) string {
	if gw.Spec.TLSSecretName != "" {
		return gw.Spec.TLSSecretName
	}
	return gw.Name + "-tls"
}

// httpServiceName names the ClusterIP Service of the gateway's plain-HTTP side.
func httpServiceName(gw *v1.Gateway) string { return gw.Name + "-http" }

// BrokerTokenDir is where a gateway pod finds its projected token for the broker.
const BrokerTokenDir = "/var/run/secrets/wasmbed/broker"

// serviceAccountName names the gateway pods' ServiceAccount, in the Gateway's
// namespace, as the Deployment.
func serviceAccountName(gw *v1.Gateway) string { return gw.Name }

// LabelGatewayNamespace is set, with LabelGateway, on the gateway's
// ClusterRoleBinding, which cannot have the namespaced Gateway as its owner.
const LabelGatewayNamespace = "wasmbed.dev/gateway-namespace"

// clusterRoleBindingName names the binding of the gateway's ServiceAccount to the
// Devices-reading ClusterRole: "wasmbed-gateway:<namespace>:<name>", shortened with a
// hash past the 253 characters of an object name.
func clusterRoleBindingName(gw *v1.Gateway) string {
	return boundedName("wasmbed-gateway:" + gw.Namespace + ":" + gw.Name)
}

// boundedName returns n, or past the 253 characters of an object name, its first 236
// and a hash of the whole: distinct names stay distinct.
func boundedName(n string) string {
	if len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:236] + "-" + hex.EncodeToString(sum[:8])
}

// clusterRoleBinding is the desired binding of gw's ServiceAccount to the ClusterRole.
func (r *Reconciler) clusterRoleBinding(gw *v1.Gateway) *rbacv1.ClusterRoleBinding {
	l := labels(gw)
	l[LabelGatewayNamespace] = gw.Namespace
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: clusterRoleBindingName(gw), Labels: l},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.opts.ClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccountName(gw), Namespace: gw.Namespace}},
	}
}

func labels(gw *v1.Gateway) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "wasmbed-gateway",
		"app.kubernetes.io/instance":   gw.Name,
		"app.kubernetes.io/managed-by": ManagedBy,
		LabelGateway:                   gw.Name,
	}
}

func selector(gw *v1.Gateway) map[string]string {
	return map[string]string{"app.kubernetes.io/name": "wasmbed-gateway", LabelGateway: gw.Name}
}

// EnvDeploymentKey carries the deployment verification key to cmd/gateway.
const EnvDeploymentKey = "WASMBED_DEPLOYMENT_KEY"

// Args is the gateway's command line for gw (cmd/gateway's flags).
func Args(gw *v1.Gateway) []string {
	maxDevices := gw.Spec.MaxDevices
	if maxDevices == 0 {
		maxDevices = defaultMaxDevices
	}
	a := []string{
		FlagName + "=" + gw.Ref().String(),
		FlagAddr + "=:" + strconv.Itoa(int(portOf(gw))),
		FlagHTTPAddr + "=:" + strconv.Itoa(HTTPPort),
		FlagOpsAddr + "=:" + strconv.Itoa(OpsPort),
		FlagHeartbeatInterval + "=" + duration(gw.Spec.HeartbeatInterval, defaultHeartbeatInterval).String(),
		FlagHeartbeatTimeout + "=" + duration(gw.Spec.HeartbeatTimeout, defaultHeartbeatTimeout).String(),
		FlagMaxSessions + "=" + strconv.Itoa(int(maxDevices)),
		FlagTLSDir + "=" + TLSDir,
		FlagStateDir + "=" + StateDir,
		FlagRegistry + "=kube",
	}
	if gw.Spec.AllowTLS12 {
		a = append(a, FlagAllowTLS12)
	}
	return a
}

// deploymentSpec is the desired spec of the gateway's Deployment.
func (r *Reconciler) deploymentSpec(gw *v1.Gateway) appsv1.DeploymentSpec {
	replicas := gw.Spec.Replicas
	probe := func(p string) *corev1.Probe {
		// The apiserver's defaults, spelled out: a zero number is not "unset" to the
		// drift check.
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: p, Port: intstr.FromString(portNameOps), Scheme: corev1.URISchemeHTTP,
			}},
			TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
		}
	}
	return appsv1.DeploymentSpec{
		Replicas: &replicas,
		Selector: &metav1.LabelSelector{MatchLabels: selector(gw)},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels(gw)},
			Spec: corev1.PodSpec{
				// Its own account, bound to the ClusterRole that reads Devices.
				ServiceAccountName: serviceAccountName(gw),
				// A gateway holds long-lived sessions: give it time to close them.
				TerminationGracePeriodSeconds: ptr.To[int64](60),
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot:   ptr.To(true),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				Containers: []corev1.Container{{
					Name:  containerName,
					Image: r.opts.Image,
					Args:  Args(gw),
					Env: append([]corev1.EnvVar{
						{Name: "K_SINK", Value: r.opts.BrokerURL},
						// The gateway's events carry its own ServiceAccount's token for the
						// broker's audience (docs/security.md).
						{Name: "K_SINK_TOKEN_FILE", Value: BrokerTokenDir + "/token"},
						// Session goroutines start with the smallest stack (docs/gateway.md).
						{Name: "GODEBUG", Value: "adaptivestackstart=0"},
						// Only deployments the platform signed are recorded (docs/security.md).
						{Name: EnvDeploymentKey, Value: r.opts.DeploymentKey},
						{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					}, r.opts.Env...),
					Ports: []corev1.ContainerPort{
						{Name: portNameDevices, ContainerPort: portOf(gw), Protocol: corev1.ProtocolTCP},
						{Name: portNameHTTP, ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
						{Name: portNameOps, ContainerPort: OpsPort, Protocol: corev1.ProtocolTCP},
					},
					ReadinessProbe: probe("/readyz"),
					LivenessProbe:  probe("/healthz"),
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("100m"),
						corev1.ResourceMemory: resource.MustParse("64Mi"),
					}},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "tls", MountPath: TLSDir, ReadOnly: true},
						{Name: "state", MountPath: StateDir},
						{Name: "broker-token", MountPath: BrokerTokenDir, ReadOnly: true},
					},
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false),
						ReadOnlyRootFilesystem:   ptr.To(true),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
				}},
				Volumes: []corev1.Volume{
					{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: tlsSecretName(gw)}}},
					{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "broker-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
						Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
							Audience: events.BrokerAudience(), ExpirationSeconds: ptr.To[int64](3600), Path: "token"}}},
					}}},
				},
			},
		},
	}
}

// deviceServicePorts are the ports of the Service devices connect through.
func deviceServicePorts(gw *v1.Gateway) []corev1.ServicePort {
	return []corev1.ServicePort{{
		Name: portNameDevices, Port: portOf(gw), TargetPort: intstr.FromString(portNameDevices), Protocol: corev1.ProtocolTCP,
	}}
}

// httpServicePorts are the ports of the ClusterIP Service of the plain-HTTP side: the
// deploy API (the Trigger's subscriber, the console's device logs) and health and
// metrics (for a ServiceMonitor).
func httpServicePorts() []corev1.ServicePort {
	return []corev1.ServicePort{
		{Name: portNameHTTP, Port: HTTPPort, TargetPort: intstr.FromString(portNameHTTP), Protocol: corev1.ProtocolTCP},
		{Name: portNameOps, Port: OpsPort, TargetPort: intstr.FromString(portNameOps), Protocol: corev1.ProtocolTCP},
	}
}

// triggerSpec is the desired spec of the Trigger that delivers the gateway's
// deployment requests to its plain-HTTP Service.
func (r *Reconciler) triggerSpec(gw *v1.Gateway) eventingv1.TriggerSpec {
	subscriber := &apis.URL{
		Scheme: "http",
		Host:   fmt.Sprintf("%s.%s.svc.%s:%d", httpServiceName(gw), gw.Namespace, r.opts.ClusterDomain, HTTPPort),
		Path:   "/",
	}
	delivery := &eventingduckv1.DeliverySpec{
		Retry:         ptr.To[int32](5),
		BackoffPolicy: ptr.To(eventingduckv1.BackoffPolicyExponential),
		BackoffDelay:  ptr.To("PT0.2S"),
	}
	if r.opts.DeadLetterSink != "" {
		u, _ := apis.ParseURL(r.opts.DeadLetterSink) // checked by withDefaults
		// With the audience, Knative sends a token the receiver admits (the operator's
		// admits only its own audience), as the Broker's dead letters carry.
		delivery.DeadLetterSink = &duckv1.Destination{URI: u, Audience: ptr.To(r.opts.DeadLetterAudience)}
	}
	return eventingv1.TriggerSpec{
		Broker: r.opts.Broker,
		Filter: &eventingv1.TriggerFilter{Attributes: eventingv1.TriggerFilterAttributes{
			"type":            string(events.DeploymentRequested),
			events.ExtGateway: gw.Ref().Extension(),
		}},
		Subscriber: duckv1.Destination{URI: subscriber, Audience: ptr.To(events.GatewayAudience(gw.Namespace, gw.Name))},
		Delivery:   delivery,
	}
}
