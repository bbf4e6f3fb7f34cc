package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// digestRef is REPO/name@sha256:<64 hex>, the only form of reference ko's output may hold.
var digestRef = regexp.MustCompile(`^[a-z0-9.:-]+(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$`)

// CheckRefs reads manifests that ko resolved (YAML documents) and returns every image
// reference in them: each container's image, and every string that names repo (the
// operator's WASMBED_GATEWAY_IMAGE). It fails when one is not repo/...@sha256:...,
// or when a ko:// reference is left.
func CheckRefs(manifests []byte, repo string) ([]string, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	refs := map[string]bool{}
	var bad []string
	for {
		var doc any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("parse manifests: %w", err)
		}
		walk(doc, "", func(key, s string) {
			switch {
			case strings.HasPrefix(s, "ko://"):
				bad = append(bad, s+" (left unresolved)")
			case key == "image" || strings.HasPrefix(s, repo+"/"):
				if !strings.HasPrefix(s, repo+"/") || !digestRef.MatchString(s) {
					bad = append(bad, s)
					return
				}
				refs[s] = true
			}
		})
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("image references that are not digests in %s:\n  %s", repo, strings.Join(bad, "\n  "))
	}
	out := make([]string, 0, len(refs))
	for r := range refs {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

// walk calls fn for every string in v with the key it is found under.
func walk(v any, key string, fn func(key, s string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			walk(e, k, fn)
		}
	case []any:
		for _, e := range x {
			walk(e, key, fn)
		}
	case string:
		fn(key, x)
	}
}

// checkRefsFile is `images refs -repo REPO FILE`.
func checkRefsFile(repo, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	refs, err := CheckRefs(b, repo)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(refs) == 0 {
		return fmt.Errorf("%s: no image references in %s", file, repo)
	}
	fmt.Fprintf(os.Stderr, "images: %s: %d image references, all digests in %s\n", file, len(refs), repo)
	return nil
}
