package knativeadmission

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	eventingconfig "knative.dev/eventing/pkg/apis/config"
	"knative.dev/eventing/pkg/apis/feature"
	messagingconfig "knative.dev/eventing/pkg/apis/messaging/config"
	"knative.dev/pkg/configmap"
	servingconfig "knative.dev/serving/pkg/apis/config"
)

// Config is what the webhooks of Knative Serving and Eventing read from their
// namespaces' ConfigMaps: feature flags (config-features), defaults (config-defaults,
// config-br-defaults, default-ch-webhook) and the autoscaler's bounds. Each side is
// keyed by ConfigMap name. A Config is immutable: With* returns a changed copy.
type Config struct {
	serving, eventing map[string]map[string]string
}

// ConfigMapsDir is where a Knative module (knative.dev/serving, knative.dev/eventing)
// keeps the ConfigMaps its release installs, relative to the module's root.
const ConfigMapsDir = "config/core/configmaps"

// LoadConfig reads the ConfigMaps Knative's releases install, with their default
// data, from the roots of the knative.dev/serving and knative.dev/eventing modules
// (`go list -m -f {{.Dir}}`).
func LoadConfig(servingModuleDir, eventingModuleDir string) (Config, error) {
	s, err := readConfigMaps(filepath.Join(servingModuleDir, ConfigMapsDir))
	if err != nil {
		return Config{}, fmt.Errorf("knative serving's config: %w", err)
	}
	e, err := readConfigMaps(filepath.Join(eventingModuleDir, ConfigMapsDir))
	if err != nil {
		return Config{}, fmt.Errorf("knative eventing's config: %w", err)
	}
	return Config{serving: s, eventing: e}, nil
}

// WithServing returns a copy of c whose knative-serving ConfigMap name has the
// given keys set (over the defaults).
func (c Config) WithServing(name string, data map[string]string) Config {
	c.serving = with(c.serving, name, data)
	return c
}

// WithEventing returns a copy of c whose knative-eventing ConfigMap name has the
// given keys set (over the defaults).
func (c Config) WithEventing(name string, data map[string]string) Config {
	c.eventing = with(c.eventing, name, data)
	return c
}

func with(cms map[string]map[string]string, name string, data map[string]string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(cms)+1)
	for n, d := range cms {
		out[n] = maps.Clone(d)
	}
	if out[name] == nil {
		out[name] = map[string]string{}
	}
	maps.Copy(out[name], data)
	return out
}

// Context returns ctx carrying c as Knative's webhooks carry their configuration
// into SetDefaults and Validate. A ConfigMap a webhook reads must be in c; a value
// it cannot parse is an error, as it would be for the webhook.
func (c Config) Context(ctx context.Context) (_ context.Context, err error) {
	// A configmap.StaticWatcher panics on a ConfigMap it does not hold, and the
	// stores panic on data they cannot parse: both are errors of c.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("knative configuration: %v", r)
		}
	}()
	logger := panicLogger{}
	servingWatcher := configmap.NewStaticWatcher(configMaps("knative-serving", c.serving)...)
	eventingWatcher := configmap.NewStaticWatcher(configMaps("knative-eventing", c.eventing)...)

	servingStore := servingconfig.NewStore(logger)
	servingStore.WatchConfigs(servingWatcher)
	defaults := eventingconfig.NewStore(logger)
	defaults.WatchConfigs(eventingWatcher)
	channels := messagingconfig.NewStore(logger)
	channels.WatchConfigs(eventingWatcher)
	features := feature.NewStore(logger)
	features.WatchConfigs(eventingWatcher)
	if servingStore.Load() == nil || defaults.Load() == nil || channels.Load() == nil {
		return nil, errors.New("knative configuration: a store loaded nothing")
	}
	return features.ToContext(channels.ToContext(defaults.ToContext(servingStore.ToContext(ctx)))), nil
}

func configMaps(namespace string, cms map[string]map[string]string) []*corev1.ConfigMap {
	names := make([]string, 0, len(cms))
	for n := range cms {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*corev1.ConfigMap, 0, len(names))
	for _, n := range names {
		cm := &corev1.ConfigMap{Data: maps.Clone(cms[n])}
		cm.Name, cm.Namespace = n, namespace
		out = append(out, cm)
	}
	return out
}

// readConfigMaps reads every ConfigMap in the YAML files of dir, by name.
func readConfigMaps(dir string) (map[string]map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no ConfigMaps in %s", dir)
	}
	out := map[string]map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			var cm corev1.ConfigMap
			if err := dec.Decode(&cm); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if cm.Kind != "ConfigMap" || cm.Name == "" {
				continue
			}
			out[cm.Name] = cm.Data
		}
	}
	return out, nil
}

// panicLogger is the stores' logger: a ConfigMap they cannot parse is fatal to a
// webhook (log.Fatalf), here a panic that Context returns as an error.
type panicLogger struct{}

func (panicLogger) Debugf(string, ...any)          {}
func (panicLogger) Infof(string, ...any)           {}
func (panicLogger) Errorf(string, ...any)          {}
func (panicLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
