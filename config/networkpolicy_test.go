package config_test

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// pod is the target or the source of a connection: its namespace (and that
// namespace's labels), its labels, and its named container ports.
type pod struct {
	namespace string
	nsLabels  map[string]string
	labels    map[string]string
	ports     map[string]int32
}

func inNamespace(ns string, extra map[string]string, podLabels map[string]string, ports map[string]int32) pod {
	l := map[string]string{"kubernetes.io/metadata.name": ns}
	for k, v := range extra {
		l[k] = v
	}
	return pod{namespace: ns, nsLabels: l, labels: podLabels, ports: ports}
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// admits reports whether the NetworkPolicies let from connect to port (a container
// port name of to), by the rules of the NetworkPolicy API: a pod no policy selects for
// ingress accepts everything; a selected pod accepts what one rule of one of them
// allows.
func admits(policies []networkingv1.NetworkPolicy, to pod, port string, from pod) bool {
	isolated := false
	for _, p := range policies {
		ingress := len(p.Spec.PolicyTypes) == 0
		for _, t := range p.Spec.PolicyTypes {
			ingress = ingress || t == networkingv1.PolicyTypeIngress
		}
		if p.Namespace != to.namespace || !ingress || !selects(&p.Spec.PodSelector, to.labels) {
			continue
		}
		isolated = true
		for _, rule := range p.Spec.Ingress {
			if portMatches(rule.Ports, to, port) && peerMatches(rule.From, p.Namespace, from) {
				return true
			}
		}
	}
	return !isolated
}

func portMatches(ports []networkingv1.NetworkPolicyPort, to pod, port string) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		switch {
		case p.Port == nil:
			return true
		case p.Port.StrVal != "":
			if p.Port.StrVal == port {
				return true
			}
		default:
			n, end := p.Port.IntVal, p.Port.IntVal
			if p.EndPort != nil {
				end = *p.EndPort
			}
			if to.ports[port] >= n && to.ports[port] <= end {
				return true
			}
		}
	}
	return false
}

func peerMatches(peers []networkingv1.NetworkPolicyPeer, policyNamespace string, from pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		switch {
		case p.IPBlock != nil:
			// Pods are not matched by address here.
		case p.NamespaceSelector == nil:
			if from.namespace == policyNamespace && selects(p.PodSelector, from.labels) {
				return true
			}
		case selects(p.NamespaceSelector, from.nsLabels) && (p.PodSelector == nil || selects(p.PodSelector, from.labels)):
			return true
		}
	}
	return false
}

// TestNetworkPolicies: each component is reachable by whom config/README.md says, and
// by nobody else.
func TestNetworkPolicies(t *testing.T) {
	var policies []networkingv1.NetworkPolicy
	for _, file := range manifests(t) {
		for _, obj := range objects(t, file) {
			if obj.GetKind() != "NetworkPolicy" {
				continue
			}
			var p networkingv1.NetworkPolicy
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &p); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			policies = append(policies, p)
		}
	}
	const sys = "wasmbed-system"
	var (
		// The pods of each component, with the labels and port names they get from
		// config/ and from the operator (a gateway).
		gateway = inNamespace(sys, nil, map[string]string{"app.kubernetes.io/name": "wasmbed-gateway", "wasmbed.dev/gateway": "gateway"},
			map[string]int32{"devices": 8443, "http": 8080, "ops": 9090})
		operator = inNamespace(sys, nil, map[string]string{"app.kubernetes.io/name": "wasmbed-operator"},
			map[string]int32{"events": 8080, "health": 8081, "metrics": 9090})
		compile = inNamespace(sys, nil, map[string]string{"serving.knative.dev/service": "wasmbed-compile"},
			map[string]int32{"queue": 8012})
		dispatch = inNamespace(sys, nil, map[string]string{"serving.knative.dev/service": "wasmbed-dispatch"},
			map[string]int32{"queue": 8012})
		console = inNamespace(sys, nil, map[string]string{"app.kubernetes.io/name": "wasmbed-console"},
			map[string]int32{"http": 8080})

		anywhere   = inNamespace("default", nil, map[string]string{"app": "anything"}, nil)
		neighbour  = inNamespace(sys, nil, map[string]string{"app": "registry"}, nil)
		broker     = inNamespace("knative-eventing", nil, map[string]string{"eventing.knative.dev/brokerRole": "filter"}, nil)
		activator  = inNamespace("knative-serving", nil, map[string]string{"app": "activator"}, nil)
		kourier    = inNamespace("kourier-system", nil, map[string]string{"app": "3scale-kourier-gateway"}, nil)
		prometheus = inNamespace("monitoring", map[string]string{"wasmbed.dev/scrape": "true"}, map[string]string{"app": "prometheus"}, nil)
	)
	for _, tc := range []struct {
		name string
		to   pod
		port string
		from pod
		want bool
	}{
		{"devices reach the gateway", gateway, "devices", anywhere, true},
		{"the broker reaches the gateway's deploy API", gateway, "http", broker, true},
		{"the console reads the gateway's device logs", gateway, "http", console, true},
		{"nobody else reaches the gateway's deploy API", gateway, "http", anywhere, false},
		{"no neighbour reaches the gateway's deploy API", gateway, "http", neighbour, false},
		{"Prometheus scrapes the gateway", gateway, "ops", prometheus, true},
		{"nobody else reaches the gateway's metrics", gateway, "ops", anywhere, false},
		{"the broker reaches the operator's receiver", operator, "events", broker, true},
		{"nobody else reaches the operator's receiver", operator, "events", anywhere, false},
		{"the console does not reach the operator's receiver", operator, "events", console, false},
		{"Prometheus scrapes the operator", operator, "metrics", prometheus, true},
		{"nobody else reaches the operator's metrics", operator, "metrics", anywhere, false},
		{"the activator reaches compile", compile, "queue", activator, true},
		{"the ingress reaches dispatch", dispatch, "queue", kourier, true},
		{"the broker reaches dispatch", dispatch, "queue", broker, true},
		{"nobody else reaches compile", compile, "queue", anywhere, false},
		{"no neighbour reaches dispatch", dispatch, "queue", neighbour, false},
		{"the console does not call dispatch", dispatch, "queue", console, false},
		{"users reach the console", console, "http", anywhere, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := admits(policies, tc.to, tc.port, tc.from); got != tc.want {
				t.Fatalf("admitted %v, want %v", got, tc.want)
			}
		})
	}
}
