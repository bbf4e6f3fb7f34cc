package artifacts

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// NewFromURL returns the store rawurl names: a plain path or file:///path is a Dir;
// oci://registry/repository is an OCI store over HTTPS and oci+http://host:port/repository
// one over plain HTTP (cfg supplies credentials and timeouts). Errors name the part of
// the URL that is wrong.
func NewFromURL(rawurl string, cfg ClientConfig) (Store, error) {
	if rawurl == "" {
		return nil, errors.New("store url is empty")
	}
	if !strings.Contains(rawurl, "://") {
		if strings.HasPrefix(rawurl, "file:") || strings.HasPrefix(rawurl, "oci:") || strings.HasPrefix(rawurl, "oci+") {
			return nil, fmt.Errorf("store url %q: want scheme://, e.g. file:///path or oci://registry/repository", rawurl)
		}
		return NewDir(rawurl)
	}
	u, err := url.Parse(rawurl)
	if err != nil {
		return nil, fmt.Errorf("store url: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("store url %q: unexpected query or fragment", rawurl)
	}
	if u.User != nil {
		return nil, fmt.Errorf("store url %q: credentials in the url; use a docker config or ClientConfig", u.Redacted())
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("store url %q: file url names host %q; want file:///path", rawurl, u.Host)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("store url %q: file url names no path", rawurl)
		}
		return NewDir(u.Path)
	case "oci", "oci+https", "oci+http":
		if u.Host == "" {
			return nil, fmt.Errorf("store url %q: names no registry host", rawurl)
		}
		repo := strings.Trim(u.Path, "/")
		if repo == "" {
			return nil, fmt.Errorf("store url %q: names no repository after the registry host", rawurl)
		}
		if strings.ContainsAny(repo, ":@") {
			return nil, fmt.Errorf("store url %q: repository %q carries a tag or digest; the store tags modules itself", rawurl, repo)
		}
		s, err := NewOCI(u.Host+"/"+repo, cfg.WithPlainHTTP(u.Scheme == "oci+http"))
		if err != nil {
			return nil, fmt.Errorf("store url: %w", err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("store url %q: unsupported scheme %q (want file, oci or oci+http, or a plain path)", rawurl, u.Scheme)
	}
}
