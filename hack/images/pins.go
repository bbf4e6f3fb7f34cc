package main

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// koConfig is the part of ko.yaml that names base images.
type koConfig struct {
	DefaultBaseImage   string            `json:"defaultBaseImage"`
	BaseImageOverrides map[string]string `json:"baseImageOverrides"`
}

// Pins returns the digest ko.yaml pins for each image this command builds, by name
// (the last element of the repository: static, builder).
func Pins(koYAML []byte) (map[string]string, error) {
	var c koConfig
	if err := yaml.Unmarshal(koYAML, &c); err != nil {
		return nil, fmt.Errorf("ko.yaml: %w", err)
	}
	pins := map[string]string{}
	for _, ref := range append([]string{c.DefaultBaseImage}, values(c.BaseImageOverrides)...) {
		repo, digest, ok := strings.Cut(ref, "@")
		if !ok {
			return nil, fmt.Errorf("ko.yaml: base image %q is not pinned by digest", ref)
		}
		name := repo[strings.LastIndex(repo, "/")+1:]
		if prev, ok := pins[name]; ok && prev != digest {
			return nil, fmt.Errorf("ko.yaml pins %s at two digests", name)
		}
		pins[name] = digest
	}
	return pins, nil
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// checkPins fails when ko.yaml pins another digest than the one built, for any image
// built.
func checkPins(koPath string, built []builtImage) error {
	b, err := os.ReadFile(koPath)
	if err != nil {
		return err
	}
	pins, err := Pins(b)
	if err != nil {
		return err
	}
	var bad []string
	for _, img := range built {
		_, digest, _ := strings.Cut(img.ref, "@")
		if pins[img.name] != digest {
			bad = append(bad, fmt.Sprintf("%s: ko.yaml pins %q, the build made %s", img.name, pins[img.name], digest))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s does not pin what the locks build (pin the new digests if a lock changed; otherwise the build is not reproducible):\n  %s", koPath, strings.Join(bad, "\n  "))
	}
	return nil
}
