package artifacts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wasmbed/wasmbed/api/digest"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
)

// Fetch downloads a prebuilt module and returns it with its digest. source is an
// http(s) URL (see FetchHTTP) or an OCI reference (see FetchOCI). When want is not
// empty the module must have that digest, else the error wraps ErrDigestMismatch.
func Fetch(ctx context.Context, source string, want digest.Digest, cfg ClientConfig) ([]byte, digest.Digest, error) {
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		return FetchHTTP(ctx, source, want, cfg)
	}
	return FetchOCI(ctx, source, want, cfg)
}

// FetchOCI pulls the module from an artifact in the wasm layout named by reference:
// "registry/repo:tag" or "registry/repo@sha256:<hex>", optionally prefixed oci://, or
// oci+http:// for a plain-HTTP registry. The manifest must have exactly one
// MediaTypeWasmLayer layer; the module is checked against that layer's digest and,
// when given, want.
func FetchOCI(ctx context.Context, reference string, want digest.Digest, cfg ClientConfig) ([]byte, digest.Digest, error) {
	if want != "" {
		if err := want.Validate(); err != nil {
			return nil, "", fmt.Errorf("fetch %s: want: %w", reference, err)
		}
	}
	s := reference
	switch {
	case strings.HasPrefix(s, "oci+http://"):
		s = strings.TrimPrefix(s, "oci+http://")
		cfg = cfg.WithPlainHTTP(true)
	case strings.HasPrefix(s, "oci://"):
		s = strings.TrimPrefix(s, "oci://")
	case strings.Contains(s, "://"):
		return nil, "", fmt.Errorf("fetch %s: unsupported scheme (want http, https, oci or oci+http)", reference)
	}
	ref, err := registry.ParseReference(s)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", reference, err)
	}
	if ref.Reference == "" {
		return nil, "", fmt.Errorf("fetch %s: reference names no tag or digest", reference)
	}
	repo, err := newRepository(ref, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", reference, err)
	}
	ctx, cancel := cfg.callContext(ctx)
	defer cancel()

	_, m, err := readManifest(ctx, repo, ref.Reference)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, "", fmt.Errorf("fetch %s: %w", reference, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", reference, err)
	}
	layer, err := wasmLayer(m)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", reference, err)
	}
	b, err := readModule(ctx, repo, layer)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, "", fmt.Errorf("fetch %s: layer %s: %w", reference, layer.Digest, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", reference, err)
	}
	d, err := digest.Parse(layer.Digest.String())
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: layer: %w", reference, err)
	}
	if want != "" && d != want {
		return nil, "", fmt.Errorf("fetch %s: module is %s, want %s: %w", reference, d, want, ErrDigestMismatch)
	}
	return b, d, nil
}

// FetchHTTP downloads the module at rawurl (http or https, no credentials sent),
// refusing a body above MaxModuleBytes without reading it all, and checks it against
// want when given. Errors name the URL without its query, which may hold a signature.
func FetchHTTP(ctx context.Context, rawurl string, want digest.Digest, cfg ClientConfig) ([]byte, digest.Digest, error) {
	u, err := url.Parse(rawurl)
	if err != nil {
		return nil, "", fmt.Errorf("fetch: %w", err)
	}
	name := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", fmt.Errorf("fetch %s: scheme %q is not http or https", name, u.Scheme)
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("fetch %s: url names no host", name)
	}
	if want != "" {
		if err := want.Validate(); err != nil {
			return nil, "", fmt.Errorf("fetch %s: want: %w", name, err)
		}
	}
	ctx, cancel := cfg.callContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawurl, nil)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", name, err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", MediaTypeWasmLayer+", application/octet-stream;q=0.9, */*;q=0.1")
	resp, err := cfg.plainClient().Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", name, redactURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", fmt.Errorf("fetch %s: %w", name, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, "", fmt.Errorf("fetch %s: %s", name, resp.Status)
	}
	if resp.ContentLength > MaxModuleBytes {
		return nil, "", fmt.Errorf("fetch %s: module is %d bytes; the limit is %d", name, resp.ContentLength, MaxModuleBytes)
	}
	b, err := readLimited(resp.Body, MaxModuleBytes)
	if errors.Is(err, errOverLimit) {
		return nil, "", fmt.Errorf("fetch %s: module is over the limit of %d bytes", name, MaxModuleBytes)
	}
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: read body: %w", name, err)
	}
	if err := checkSize(b); err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", name, err)
	}
	d := digest.Of(b)
	if want != "" && d != want {
		return nil, "", fmt.Errorf("fetch %s: module is %s, want %s: %w", name, d, want, ErrDigestMismatch)
	}
	return b, d, nil
}

// redactURLError drops the query from the URL a *url.Error carries.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.User = "", nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}
