package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// fieldManager owns the fields the CLI writes with server-side apply.
const fieldManager = "wasmbed-cli"

// requestTimeout bounds the apiserver calls of one command step (a get, a list, a
// deploy's applies); waiting for a rollout is bounded by its own --timeout instead.
const requestTimeout = time.Minute

// kubeFlags are kubectl's connection flags: --kubeconfig (else $KUBECONFIG, else
// ~/.kube/config), --context, -n/--namespace (else the context's namespace), --server,
// --token, --as and the rest of clientcmd's overrides.
type kubeFlags struct {
	kubeconfig string
	overrides  clientcmd.ConfigOverrides
}

// connectionFlag annotates the flags bind adds, which the help lists apart.
const connectionFlag = "wasmbed.dev/connection-flag"

// bind adds the flags to fs.
func (k *kubeFlags) bind(fs *pflag.FlagSet) {
	kfs := pflag.NewFlagSet("connection", pflag.ContinueOnError)
	kfs.StringVar(&k.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	clientcmd.BindOverrideFlags(&k.overrides, kfs, clientcmd.RecommendedConfigOverrideFlags(""))
	kfs.VisitAll(func(f *pflag.Flag) { f.Annotations = map[string][]string{connectionFlag: {"true"}} })
	fs.AddFlagSet(kfs)
}

func (k *kubeFlags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &k.overrides)
}

// kube is a connection to the cluster the flags name.
type kube struct {
	rest      *rest.Config
	client    client.WithWatch
	namespace string
}

// newScheme knows the built-in kinds and the Wasmbed kinds.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	if err := v1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	return s, nil
}

// connect loads the kubeconfig and returns a client and the namespace to work in.
func (k *kubeFlags) connect() (*kube, error) {
	cc := k.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig namespace: %w", err)
	}
	cfg.UserAgent = "wasmbed-cli/" + currentVersion().Version
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return &kube{rest: cfg, client: c, namespace: ns}, nil
}
