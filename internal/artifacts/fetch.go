package artifacts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/wasmbed/wasmbed/api/digest"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Fetch downloads a prebuilt module and returns it with its digest. source is an
// http(s) URL (see FetchHTTP) or an OCI reference (see FetchOCI), whose host must be
// on cfg's allow-list; a refusal wraps ErrRefused. When want is not empty the module
// must have that digest, else the error wraps ErrDigestMismatch. Errors quote nothing
// the server answered but status codes.
func Fetch(ctx context.Context, source string, want digest.Digest, cfg ClientConfig) ([]byte, digest.Digest, error) {
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		return FetchHTTP(ctx, source, want, cfg)
	}
	return FetchOCI(ctx, source, want, cfg)
}

// FetchOCI pulls the module from an artifact in the wasm layout named by reference:
// "registry/repo:tag" or "registry/repo@sha256:<hex>", optionally prefixed oci://, or
// oci+http:// for a plain-HTTP registry. The registry must be on cfg's allow-list, and
// every connection passes the address guard (see AllowList). The manifest must have
// exactly one MediaTypeWasmLayer layer; the module is checked against that layer's
// digest and, when given, want.
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
	host, port := splitRegistry(ref.Registry, cfg.plainHTTP)
	if err := cfg.guard().checkSource(ref.Registry, host, port); err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", reference, err)
	}
	hc, transport, err := cfg.fetchRegistryClient()
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", reference, err)
	}
	defer transport.CloseIdleConnections()
	repo, err := newRepository(ref, cfg, hc)
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

// splitRegistry splits a reference's registry (host[:port]) into host and port, the
// port defaulting to the scheme's.
func splitRegistry(registry string, plainHTTP bool) (host, port string) {
	if h, p, err := net.SplitHostPort(registry); err == nil {
		return h, p
	}
	if plainHTTP {
		return strings.Trim(registry, "[]"), "80"
	}
	return strings.Trim(registry, "[]"), "443"
}

// FetchHTTP downloads the module at rawurl (http or https, no credentials sent),
// refusing a body above MaxModuleBytes without reading it all, and checks it against
// want when given. The URL's host must be on cfg's allow-list, and every connection,
// redirects included, passes the address guard (see AllowList). Errors name the URL
// without its query, which may hold a signature, and quote nothing the server sent
// but its status code.
func FetchHTTP(ctx context.Context, rawurl string, want digest.Digest, cfg ClientConfig) ([]byte, digest.Digest, error) {
	u, err := url.Parse(rawurl)
	if err != nil {
		return nil, "", fmt.Errorf("fetch: %w", redactURLError(err))
	}
	name := redacted(u)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", fmt.Errorf("fetch %s: scheme %q is not http or https", name, u.Scheme)
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("fetch %s: url names no host", name)
	}
	if u.User != nil {
		return nil, "", fmt.Errorf("fetch %s: credentials in the url are not sent; remove them", name)
	}
	if want != "" {
		if err := want.Validate(); err != nil {
			return nil, "", fmt.Errorf("fetch %s: want: %w", name, err)
		}
	}
	if err := cfg.guard().checkSource(u.Host, u.Hostname(), portOf(u)); err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", name, err)
	}
	client, transport, err := cfg.fetchClient()
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", name, err)
	}
	defer transport.CloseIdleConnections()
	ctx, cancel := cfg.callContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawurl, nil)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", name, redactURLError(err))
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", MediaTypeWasmLayer+", application/octet-stream;q=0.9, */*;q=0.1")
	resp, err := client.Do(req)
	if err != nil {
		if re := refusal(err, name); re != nil {
			return nil, "", fmt.Errorf("fetch %s: %w", name, re)
		}
		return nil, "", fmt.Errorf("fetch %s: %w", name, redactURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", fmt.Errorf("fetch %s: %w", name, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		// The code only: the reason phrase is the server's text.
		return nil, "", fmt.Errorf("fetch %s: %w", name, &StatusError{Code: resp.StatusCode})
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

// StatusError is an unexpected HTTP status in answer to a fetch. Of the answer it
// keeps the status code and, from a registry, the error codes it named when they are
// well-formed: never the reason phrase, messages or details, which are the server's
// text.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Codes are the registry's error codes (e.g. UNAUTHORIZED, DENIED).
	Codes []string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("the server answered HTTP %d %s", e.Code, http.StatusText(e.Code))
	if len(e.Codes) > 0 {
		s += " (" + strings.Join(e.Codes, ", ") + ")"
	}
	return s
}

// registryErrorCode is the shape of a distribution-spec error code.
var registryErrorCode = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,39}$`)

// upstream returns an error of the registry client (oras) as Wasmbed reports it:
// refusals, network errors, timeouts and not-found as they are; an error answer as
// its status code and error codes; and anything else the registry sent back (a
// malformed header, a body that does not decode) as one short reason, so that no
// error quotes the server's text.
func upstream(err error) error {
	var refused *RefusedError
	var answer *errcode.ErrorResponse
	var ue *url.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused):
		return refusal(err, "")
	case errors.Is(err, errdef.ErrNotFound):
		return errdef.ErrNotFound
	case errors.As(err, &answer):
		se := &StatusError{Code: answer.StatusCode}
		for _, e := range answer.Errors {
			if registryErrorCode.MatchString(e.Code) && len(se.Codes) < 4 {
				se.Codes = append(se.Codes, e.Code)
			}
		}
		return se
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return redactURLError(err)
	case errors.As(err, &ue):
		return redactURLError(err)
	case errors.Is(err, errdef.ErrSizeExceedsLimit):
		return fmt.Errorf("the registry's answer is over the size limit: %w", errdef.ErrSizeExceedsLimit)
	// oras's own words for two length problems (they quote only our request's URL).
	case strings.HasSuffix(err.Error(), "mismatch Content-Length"):
		return errors.New("the registry's answer has another Content-Length than the descriptor's size")
	case strings.HasSuffix(err.Error(), "unknown response Content-Length"):
		return errors.New("the registry's answer has no Content-Length")
	default:
		return errors.New("the registry's answer is malformed")
	}
}

// refusal returns the *RefusedError in err, if any, naming the request it refused
// unless that is the URL first: a redirect, or with first empty a registry's
// endpoint. It returns nil when err is no refusal.
func refusal(err error, first string) error {
	var re *RefusedError
	if !errors.As(err, &re) {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		to := "(an unparsable url)"
		if u, perr := url.Parse(ue.URL); perr == nil {
			to = redacted(u)
		}
		switch {
		case first == "":
			return fmt.Errorf("%s %s: %w", ue.Op, to, re)
		case to != first:
			return fmt.Errorf("redirected to %s: %w", to, re)
		}
	}
	return re
}

// redactURLError drops the query from the URL a *url.Error carries.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return &url.Error{Op: ue.Op, URL: redacted(u), Err: ue.Err}
		}
		return &url.Error{Op: ue.Op, URL: "(an unparsable url)", Err: ue.Err}
	}
	return err
}
