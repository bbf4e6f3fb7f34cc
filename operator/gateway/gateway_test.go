package gateway

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	k8sevents "k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/testenv"
	"github.com/wasmbed/wasmbed/operator/internal/rbactest"
)

var (
	env        *testenv.Env
	restricted *rest.Config
)

func TestMain(m *testing.M) {
	flag.Parse()
	logger := logr.Discard()
	if testing.Verbose() {
		logger = funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
	}
	ctrl.SetLogger(logger)
	var err error
	if env, err = testenv.StartEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "start test apiserver:", err)
		os.Exit(1)
	}
	// The reconciler runs with only the permissions its RBAC markers grant.
	if restricted, err = rbactest.Config(context.Background(), env, "wasmbed-gateway-controller", "./operator/gateway"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// startManager runs the Gateway reconciler with opts until the test ends, watching
// namespaces (all when none).
func startManager(t *testing.T, opts Options, namespaces ...string) {
	t.Helper()
	cacheOpts := cache.Options{ByObject: CacheByObject()} // as the operator runs it
	if len(namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(restricted, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cacheOpts,
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := SetupWithManager(mgr, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

var nsCounter atomic.Int32

func namespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("gw-%d", nsCounter.Add(1))
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 20s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get polls until obj exists and check accepts it.
func get[T client.Object](t *testing.T, what string, obj T, check func(T) error) T {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	eventually(t, what, func() error {
		if err := env.Client.Get(context.Background(), key, obj); err != nil {
			return err
		}
		return check(obj)
	})
	return obj
}

func createGateway(t *testing.T, ns, name string, mutate func(*v1.Gateway)) *v1.Gateway {
	t.Helper()
	gw := &v1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if mutate != nil {
		mutate(gw)
	}
	if err := env.Client.Create(context.Background(), gw); err != nil {
		t.Fatalf("create gateway: %v", err)
	}
	return gw
}

// updateGateway changes a Gateway's spec, retrying on conflicts.
func updateGateway(t *testing.T, gw *v1.Gateway, mutate func(*v1.Gateway)) {
	t.Helper()
	eventually(t, "update gateway", func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		mutate(gw)
		return env.Client.Update(context.Background(), gw)
	})
}

func available(endpoint string) func(*v1.Gateway) error {
	return func(g *v1.Gateway) error {
		c := meta.FindStatusCondition(g.Status.Conditions, v1.ConditionAvailable)
		if c == nil || c.Status != metav1.ConditionTrue || g.Status.Endpoint != endpoint || g.Status.ObservedGeneration != g.Generation {
			return fmt.Errorf("Available %+v, endpoint %q, observedGeneration %d/%d", c, g.Status.Endpoint, g.Status.ObservedGeneration, g.Generation)
		}
		return nil
	}
}

func unavailable(msg string) func(*v1.Gateway) error {
	return func(g *v1.Gateway) error {
		c := meta.FindStatusCondition(g.Status.Conditions, v1.ConditionAvailable)
		if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, msg) {
			return fmt.Errorf("Available %+v, want False mentioning %q", c, msg)
		}
		return nil
	}
}

func owned(t *testing.T, obj client.Object, gw *v1.Gateway) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "Gateway" || ref.Name != gw.Name {
		t.Errorf("%s is controlled by %+v, want the Gateway", obj.GetName(), ref)
	}
}

func TestClusterMode(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	startManager(t, Options{
		Image:          "ko.local/gateway:test",
		BrokerURL:      "http://broker-ingress.knative-eventing.svc.cluster.local/" + ns + "/wasmbed",
		DeadLetterSink: "http://dead-letters." + ns + ".svc.cluster.local",
		DeploymentKey:  testKey,
		// The broker gateways send to, here in the test's namespace: each Gateway gets
		// an EventPolicy there.
		BrokerNamespace: ns,
		Resync:          time.Second,
		Env:             []corev1.EnvVar{{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://collector:4318"}},
	}, ns)
	gw := createGateway(t, ns, "edge", nil)

	dep := get(t, "deployment", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "edge"}}, func(*appsv1.Deployment) error { return nil })
	owned(t, dep, gw)
	c := dep.Spec.Template.Spec.Containers[0]
	wantArgs := []string{"--name=" + ns + "/edge", "--addr=:8443", "--http-addr=:8080", "--ops-addr=:9090", "--heartbeat=30s",
		"--heartbeat-timeout=1m30s", "--max-sessions=10000", "--tls-dir=/etc/wasmbed/tls", "--state-dir=/var/lib/wasmbed-gateway",
		"--registry=kube"}
	if c.Image != "ko.local/gateway:test" || !slices.Equal(c.Args, wantArgs) || *dep.Spec.Replicas != 1 {
		t.Errorf("container %s %v, replicas %d; want args %v", c.Image, c.Args, *dep.Spec.Replicas, wantArgs)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "K_SINK" && strings.HasSuffix(e.Value, "/"+ns+"/wasmbed") }) {
		t.Errorf("env %+v has no K_SINK", c.Env)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "OTEL_EXPORTER_OTLP_ENDPOINT" && e.Value == "http://collector:4318"
	}) {
		t.Errorf("env %+v lacks the operator's tracing settings", c.Env)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == EnvDeploymentKey && e.Value == testKey }) {
		t.Errorf("env %+v does not give the gateway the deployment key", c.Env)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "ops" || c.LivenessProbe.HTTPGet.Port.String() != "ops" {
		t.Errorf("probes %+v %+v, want them on the ops port", c.ReadinessProbe, c.LivenessProbe)
	}
	if v := dep.Spec.Template.Spec.Volumes; len(v) != 3 || v[0].Secret == nil || v[0].Secret.SecretName != "edge-tls" || v[1].EmptyDir == nil ||
		v[2].Projected == nil || len(v[2].Projected.Sources) != 1 || v[2].Projected.Sources[0].ServiceAccountToken == nil ||
		v[2].Projected.Sources[0].ServiceAccountToken.Audience != events.BrokerAudience() {
		t.Errorf("volumes %+v, want the edge-tls Secret, an emptyDir for state and a projected token for the broker", v)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "K_SINK_TOKEN_FILE" && e.Value == BrokerTokenDir+"/token" }) {
		t.Errorf("env %+v: the gateway does not read its broker token", c.Env)
	}

	// The gateway reads Devices as its own service account, bound to the ClusterRole
	// of config/200-rbac.
	sa := get(t, "service account", &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "edge"}}, func(*corev1.ServiceAccount) error { return nil })
	owned(t, sa, gw)
	if got := dep.Spec.Template.Spec.ServiceAccountName; got != "edge" {
		t.Errorf("pods run as %q, want the service account edge", got)
	}
	crb := get(t, "cluster role binding", &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "wasmbed-gateway:" + ns + ":edge"}}, func(*rbacv1.ClusterRoleBinding) error { return nil })
	if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != "wasmbed-gateway" || len(crb.Subjects) != 1 ||
		crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Name != "edge" || crb.Subjects[0].Namespace != ns {
		t.Errorf("binding %+v %+v", crb.RoleRef, crb.Subjects)
	}
	gatewayMayReadDevices(t, ns, "edge")
	networkPolicyFits(t, dep)

	// Its events reach the broker under its own identity only, and only the types a
	// gateway emits: an EventPolicy the real Knative CRD accepted.
	policy := &unstructured.Unstructured{}
	policy.SetGroupVersionKind(schema.GroupVersionKind{Group: "eventing.knative.dev", Version: "v1alpha1", Kind: "EventPolicy"})
	policy.SetNamespace(ns)
	policy.SetName("wasmbed-gateway-" + ns + "--edge")
	get(t, "event policy", policy, func(p *unstructured.Unstructured) error {
		from, _, _ := unstructured.NestedSlice(p.Object, "spec", "from")
		to, _, _ := unstructured.NestedSlice(p.Object, "spec", "to")
		filters, _, _ := unstructured.NestedSlice(p.Object, "spec", "filters")
		if len(from) != 1 || from[0].(map[string]any)["sub"] != "system:serviceaccount:"+ns+":edge" {
			return fmt.Errorf("from %v", from)
		}
		if len(to) != 1 || fmt.Sprint(to[0]) != "map[ref:map[apiVersion:eventing.knative.dev/v1 kind:Broker name:wasmbed]]" {
			return fmt.Errorf("to %v", to)
		}
		var types []string
		for _, f := range filters[0].(map[string]any)["any"].([]any) {
			types = append(types, f.(map[string]any)["exact"].(map[string]any)["type"].(string))
		}
		want := []string{}
		for _, t := range events.Emitters["gateway"] {
			want = append(want, string(t))
		}
		if !slices.Equal(types, want) {
			return fmt.Errorf("types %v, want %v", types, want)
		}
		return nil
	})

	svc := get(t, "device service", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "edge"}}, func(*corev1.Service) error { return nil })
	owned(t, svc, gw)
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8443 {
		t.Errorf("device service %s %+v", svc.Spec.Type, svc.Spec.Ports)
	}
	httpSvc := get(t, "http service", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "edge-http"}}, func(*corev1.Service) error { return nil })
	owned(t, httpSvc, gw)
	if httpSvc.Spec.Type != corev1.ServiceTypeClusterIP || len(httpSvc.Spec.Ports) != 2 || httpSvc.Spec.Ports[0].Port != HTTPPort || httpSvc.Spec.Ports[1].Port != OpsPort {
		t.Errorf("http service %s %+v", httpSvc.Spec.Type, httpSvc.Spec.Ports)
	}

	// The real Knative Trigger CRD accepted it; check what it says.
	trig := get(t, "trigger", &eventingv1.Trigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "edge"}}, func(*eventingv1.Trigger) error { return nil })
	owned(t, trig, gw)
	if trig.Spec.Broker != DefaultBroker {
		t.Errorf("broker %q", trig.Spec.Broker)
	}
	if a := trig.Spec.Filter.Attributes; len(a) != 2 || a["type"] != "dev.wasmbed.deployment.requested" || a["wasmbedgateway"] != ns+".edge" {
		t.Errorf("filter %v", a)
	}
	if u := trig.Spec.Subscriber.URI.String(); u != "http://edge-http."+ns+".svc.cluster.local:8080/" {
		t.Errorf("subscriber %s", u)
	}
	d := trig.Spec.Delivery
	if d == nil || *d.Retry != 5 || *d.BackoffPolicy != eventingduckv1.BackoffPolicyExponential || *d.BackoffDelay != "PT0.2S" ||
		d.DeadLetterSink == nil || d.DeadLetterSink.URI.String() != "http://dead-letters."+ns+".svc.cluster.local" ||
		d.DeadLetterSink.Audience == nil || *d.DeadLetterSink.Audience != events.ReceiverAudience("operator") {
		t.Errorf("delivery %+v", d)
	}

	// No kubelet: the Deployment never gets available replicas by itself.
	get(t, "unavailable without replicas", gw, unavailable("no available replica"))
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1}
	if err := env.Client.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	get(t, "waiting for the load balancer", gw, unavailable("LoadBalancer"))
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	if err := env.Client.Status().Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	get(t, "available at the load balancer", gw, available("203.0.113.7:8443"))

	// A spec change reaches the Deployment, the Service and the Trigger's neighbours.
	updateGateway(t, gw, func(g *v1.Gateway) {
		g.Spec.Port = 9443
		g.Spec.AllowTLS12 = true
		g.Spec.Replicas = 3
		g.Spec.MaxDevices = 500
		g.Spec.HeartbeatInterval = &metav1.Duration{Duration: 10 * time.Second}
		g.Spec.HeartbeatTimeout = &metav1.Duration{Duration: 25 * time.Second}
		g.Spec.TLSSecretName = "edge-cert"
		g.Spec.ServiceType = corev1.ServiceTypeNodePort
	})
	get(t, "deployment updated", dep, func(d *appsv1.Deployment) error {
		args := d.Spec.Template.Spec.Containers[0].Args
		for _, want := range []string{"--addr=:9443", "--tls12", "--max-sessions=500", "--heartbeat=10s", "--heartbeat-timeout=25s"} {
			if !slices.Contains(args, want) {
				return fmt.Errorf("args %v lack %s", args, want)
			}
		}
		if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Volumes[0].Secret.SecretName != "edge-cert" ||
			d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 9443 {
			return fmt.Errorf("replicas %d, volumes %+v", *d.Spec.Replicas, d.Spec.Template.Spec.Volumes)
		}
		return nil
	})
	get(t, "service updated", svc, func(s *corev1.Service) error {
		if s.Spec.Type != corev1.ServiceTypeNodePort || s.Spec.Ports[0].Port != 9443 || s.Spec.Ports[0].NodePort == 0 {
			return fmt.Errorf("service %s %+v", s.Spec.Type, s.Spec.Ports)
		}
		return nil
	})
	get(t, "NodePort without a node address", gw, unavailable("no node address"))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + ns}}
	if err := env.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), node) })
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}, {Type: corev1.NodeExternalIP, Address: "198.51.100.9"}}
	if err := env.Client.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	// Nodes are not watched: the periodic resync finds the address.
	get(t, "available at the node port", gw, available(fmt.Sprintf("198.51.100.9:%d", svc.Spec.Ports[0].NodePort)))

	// Removing a flag is seen although the apiserver defaults nothing there.
	updateGateway(t, gw, func(g *v1.Gateway) {
		g.Spec.AllowTLS12 = false
		g.Spec.ServiceType = corev1.ServiceTypeClusterIP
	})
	get(t, "flag removed", dep, func(d *appsv1.Deployment) error {
		if args := d.Spec.Template.Spec.Containers[0].Args; slices.Contains(args, "--tls12") {
			return fmt.Errorf("args %v still allow TLS 1.2", args)
		}
		return nil
	})
	get(t, "service is ClusterIP", svc, func(s *corev1.Service) error {
		if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.Ports[0].NodePort != 0 {
			return fmt.Errorf("service %s %+v", s.Spec.Type, s.Spec.Ports)
		}
		return nil
	})
	get(t, "available at the cluster IP", gw, available(svc.Spec.ClusterIP+":9443"))

	// Reconciling an unchanged Gateway writes nothing.
	objs := []client.Object{dep, svc, httpSvc, trig, sa, crb}
	var rvs []string
	for _, o := range objs {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		rvs = append(rvs, o.GetResourceVersion())
	}
	r := &Reconciler{
		client:   countingClient{Client: indexedLister{env.Client}, t: t},
		reader:   env.Client,
		scheme:   env.Scheme,
		recorder: k8sevents.NewFakeRecorder(100),
		opts: mustDefaults(t, Options{
			Image: "ko.local/gateway:test", BrokerURL: "http://broker-ingress.knative-eventing.svc.cluster.local/" + ns + "/wasmbed",
			DeadLetterSink: "http://dead-letters." + ns + ".svc.cluster.local", DeploymentKey: testKey, BrokerNamespace: ns,
			Env: []corev1.EnvVar{{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://collector:4318"}},
		}),
	}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "edge"}}); err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		if o.GetResourceVersion() != rvs[i] {
			t.Errorf("%T %s was rewritten by a reconcile with nothing to do", o, o.GetName())
		}
	}

	// Deleting the Gateway removes its binding and event policy, which it cannot own,
	// then lets it go.
	if err := env.Client.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "binding, event policy and Gateway deleted", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(crb), &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("binding: %v", err)
		}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy.DeepCopy()); !apierrors.IsNotFound(err) {
			return fmt.Errorf("event policy: %v", err)
		}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(gw), &v1.Gateway{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("gateway: %v", err)
		}
		return nil
	})
}

// gatewayMayReadDevices creates the ClusterRole of config/200-rbac (once) and checks
// that the service account may list Devices in every namespace, and nothing more.
func gatewayMayReadDevices(t *testing.T, ns, sa string) {
	t.Helper()
	ctx := context.Background()
	var role *rbacv1.ClusterRole
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "200-rbac", "200-bindings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &r); err == nil && r.Kind == "ClusterRole" && r.Name == DefaultClusterRole {
			role = &r
		}
	}
	if role == nil {
		t.Fatalf("config/200-rbac has no ClusterRole %s", DefaultClusterRole)
	}
	if err := env.Client.Create(ctx, role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gateway's service account lists Devices of every namespace", func() error {
		return c.List(ctx, &v1.DeviceList{})
	})
	if err := c.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
		t.Errorf("the gateway's service account lists Secrets (err %v)", err)
	}
}

// networkPolicyFits checks that config/'s NetworkPolicy for gateways selects the
// pods of dep and names only ports their container has.
func networkPolicyFits(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "900-networkpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var policy *networkingv1.NetworkPolicy
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var p networkingv1.NetworkPolicy
		if err := yaml.Unmarshal([]byte(doc), &p); err == nil && p.Name == "wasmbed-gateway" {
			policy = &p
		}
	}
	if policy == nil {
		t.Fatal("config/900-networkpolicies.yaml has no NetworkPolicy wasmbed-gateway")
	}
	sel, err := metav1.LabelSelectorAsSelector(&policy.Spec.PodSelector)
	if err != nil || !sel.Matches(k8slabels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("the gateway NetworkPolicy (%v) does not select the gateway pods %v", policy.Spec.PodSelector, dep.Spec.Template.Labels)
	}
	names := map[string]bool{}
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		names[p.Name] = true
	}
	for _, rule := range policy.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.StrVal == "" || !names[p.Port.StrVal] {
				t.Errorf("the gateway NetworkPolicy names port %v; the container has %v", p.Port, names)
			}
		}
	}
}

func mustDefaults(t *testing.T, o Options) Options {
	t.Helper()
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// countingClient fails the test on any write other than a status patch.
type countingClient struct {
	client.Client
	t *testing.T
}

func (c countingClient) Update(_ context.Context, obj client.Object, _ ...client.UpdateOption) error {
	c.t.Errorf("unexpected update of %T %s", obj, obj.GetName())
	return nil
}

func (c countingClient) Create(_ context.Context, obj client.Object, _ ...client.CreateOption) error {
	c.t.Errorf("unexpected create of %T %s", obj, obj.GetName())
	return nil
}

// indexedLister answers the connected-devices index by listing and filtering, as the
// manager's cache does with its index.
type indexedLister struct{ client.Client }

func (l indexedLister) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	devs, ok := list.(*v1.DeviceList)
	var lo client.ListOptions
	lo.ApplyOptions(opts)
	if !ok || lo.FieldSelector == nil {
		return l.Client.List(ctx, list, opts...)
	}
	want, _ := lo.FieldSelector.RequiresExactMatch(connectedIndex)
	if err := l.Client.List(ctx, devs); err != nil {
		return err
	}
	kept := devs.Items[:0]
	for _, d := range devs.Items {
		if got := indexConnected(&d); len(got) == 1 && got[0] == want {
			kept = append(kept, d)
		}
	}
	devs.Items = kept
	return nil
}

func TestResourceNotOwned(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	startManager(t, Options{Image: "ko.local/gateway:test", BrokerURL: "http://broker", DeploymentKey: testKey, BrokerNamespace: ns}, ns)
	squatter := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if err := env.Client.Create(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	gw := createGateway(t, ns, "taken", nil)
	get(t, "unavailable, naming the foreign Service", gw, unavailable("Service taken exists and is not owned"))
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(squatter), squatter); err != nil {
		t.Fatal(err)
	}
	if metav1.GetControllerOf(squatter) != nil || squatter.Spec.Ports[0].Port != 80 {
		t.Errorf("the foreign Service was taken over: %+v", squatter)
	}
}

func TestEmbeddedMode(t *testing.T) {
	ctx := context.Background()
	ns, other := namespace(t), namespace(t)
	startManager(t, Options{Mode: ModeEmbedded, Endpoint: "127.0.0.1:8443", Resync: 200 * time.Millisecond})
	gw := createGateway(t, ns, "local", nil)
	get(t, "available at the in-process endpoint", gw, available("127.0.0.1:8443"))
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "local"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("embedded mode made a Deployment (get: %v)", err)
	}

	// connectedDevices counts Connected devices of every namespace on this gateway.
	id := ns + "/local"
	for _, d := range []struct {
		ns, name, gateway string
		connected         bool
	}{
		{ns, "a", id, true},
		{other, "b", id, true},
		{ns, "c", id, false},
		{ns, "d", ns + "/elsewhere", true},
		{ns, "e", "", false},
	} {
		dev := &v1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: d.name}, Spec: v1.DeviceSpec{Board: "virtual"}}
		if err := env.Client.Create(ctx, dev); err != nil {
			t.Fatal(err)
		}
		if d.gateway == "" {
			continue
		}
		base := dev.DeepCopy()
		dev.Status.MarkConnected(dev.Generation, d.gateway, metav1.Now())
		if !d.connected {
			dev.Status.MarkDisconnected(dev.Generation, metav1.Now(), "test")
		}
		if err := env.Client.Status().Patch(ctx, dev, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
	}
	get(t, "two connected devices", gw, func(g *v1.Gateway) error {
		if g.Status.ConnectedDevices != 2 {
			return fmt.Errorf("connectedDevices %d", g.Status.ConnectedDevices)
		}
		return nil
	})

	// A disconnection is counted at the next resync.
	var b v1.Device
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: other, Name: "b"}, &b); err != nil {
		t.Fatal(err)
	}
	base := b.DeepCopy()
	b.Status.MarkDisconnected(b.Generation, metav1.Now(), "test")
	if err := env.Client.Status().Patch(ctx, &b, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	get(t, "one connected device", gw, func(g *v1.Gateway) error {
		if g.Status.ConnectedDevices != 1 {
			return fmt.Errorf("connectedDevices %d", g.Status.ConnectedDevices)
		}
		return nil
	})
}

// testKey is a deployment verification key, as signing.pub holds it.
const testKey = "1e985ffbe45a77ee58253c6b392ae9272442cee842cec49dbf88fbb0fffd16a8"

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		err  string
	}{
		{"cluster", Options{Image: "img", BrokerURL: "http://b", DeploymentKey: testKey}, ""},
		{"cluster without image", Options{BrokerURL: "http://b", DeploymentKey: testKey}, "Image"},
		{"cluster without deployment key", Options{Image: "img", BrokerURL: "http://b"}, "DeploymentKey"},
		{"cluster with a short deployment key", Options{Image: "img", BrokerURL: "http://b", DeploymentKey: testKey[:62]}, "DeploymentKey"},
		{"cluster without broker", Options{Image: "img", DeploymentKey: testKey}, "BrokerURL"},
		{"bad dead letter sink", Options{Image: "img", BrokerURL: "http://b", DeploymentKey: testKey, DeadLetterSink: "::"}, "dead letter"},
		{"embedded", Options{Mode: ModeEmbedded, Endpoint: "localhost:8443"}, ""},
		{"embedded without endpoint", Options{Mode: ModeEmbedded}, "Endpoint"},
		{"unknown mode", Options{Mode: "cloud"}, "unknown mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.opts.withDefaults()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if o.Broker != DefaultBroker || o.Resync != DefaultResync {
					t.Errorf("defaults not applied: %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.err)
			}
		})
	}
}
