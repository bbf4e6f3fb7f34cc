package artifacts_test

import (
	"github.com/wasmbed/wasmbed/api/digest"

	"context"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/internal/artifacts"
)

func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

func TestFetchOCI(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, false)
	listed := artifacts.NewClientConfig().WithAllowList(allow(t, r.host))
	plain := listed.WithPlainHTTP(true)
	repo := r.repo(t, "prebuilt/app")

	mod := module(42)
	want := digest.Of(mod)
	// A wasm layer beside another one (e.g. docs): Fetch picks the wasm layer.
	m := pushArtifact(t, repo, "v1",
		testLayer{"text/markdown", []byte("# app\n")},
		testLayer{"application/wasm", mod})
	pushArtifact(t, repo, "no-wasm", testLayer{"application/octet-stream", mod})
	pushArtifact(t, repo, "two-wasm", testLayer{"application/wasm", mod}, testLayer{"application/wasm", module(43)})

	ok := []struct {
		name, source string
		cfg          artifacts.ClientConfig
	}{
		{"tag", r.host + "/prebuilt/app:v1", plain},
		{"digest", r.host + "/prebuilt/app@" + m.Digest.String(), plain},
		{"tag and digest", r.host + "/prebuilt/app:ignored@" + m.Digest.String(), plain},
		{"oci+http scheme", "oci+http://" + r.host + "/prebuilt/app:v1", listed},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			got, d, err := artifacts.Fetch(ctx, tc.source, "", tc.cfg)
			if err != nil || string(got) != string(mod) || d != want {
				t.Fatalf("fetch = %x, %s, %v", got, d, err)
			}
			if _, _, err := artifacts.Fetch(ctx, tc.source, want, tc.cfg); err != nil {
				t.Fatalf("fetch with the right digest: %v", err)
			}
		})
	}

	bad := []struct {
		name, source string
		want         digest.Digest
		msg          string
		is           error
	}{
		{"digest mismatch", r.host + "/prebuilt/app:v1", (digest.Of([]byte("other"))), "want sha256:", artifacts.ErrDigestMismatch},
		{"bad want", r.host + "/prebuilt/app:v1", "sha256:xyz", "not sha256", nil},
		{"no wasm layer", r.host + "/prebuilt/app:no-wasm", "", "no application/wasm layer (it has 1 of other media types)", nil},
		{"two wasm layers", r.host + "/prebuilt/app:two-wasm", "", "2 application/wasm layers", nil},
		{"unknown tag", r.host + "/prebuilt/app:v9", "", "not found", artifacts.ErrNotFound},
		{"unknown repository", r.host + "/nothing/here:v1", "", "not found", artifacts.ErrNotFound},
		{"no tag or digest", r.host + "/prebuilt/app", "", "no tag or digest", nil},
		{"bad reference", r.host + "/Prebuilt:v1", "", "Prebuilt", nil},
		{"bad scheme", "ftp://" + r.host + "/prebuilt/app:v1", "", "unsupported scheme", nil},
		// Plain HTTP was not asked for: the TLS handshake with an HTTP server fails.
		{"https to an http registry", r.host + "/prebuilt/app:v1", "", "server gave HTTP response to HTTPS client", nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			cfg := plain
			if tc.name == "https to an http registry" {
				cfg = listed.WithTimeout(5 * time.Second)
			}
			_, _, err := artifacts.Fetch(ctx, tc.source, tc.want, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}

func TestFetchHTTP(t *testing.T) {
	ctx := context.Background()
	mod := module(9)
	big := make([]byte, artifacts.MaxModuleBytes+1)
	mux := http.NewServeMux()
	mux.HandleFunc("/m.wasm", func(w http.ResponseWriter, r *http.Request) { w.Write(mod) })
	mux.HandleFunc("/empty.wasm", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/big-declared.wasm", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	mux.HandleFunc("/big-chunked.wasm", func(w http.ResponseWriter, r *http.Request) {
		for off := 0; off < len(big); off += 64 << 10 {
			w.Write(big[off:min(off+64<<10, len(big))])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/fail.wasm", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/slow.wasm", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tlsSrv := httptest.NewUnstartedServer(mux)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case
	tlsSrv.StartTLS()
	defer tlsSrv.Close()

	cfg := artifacts.NewClientConfig().WithAllowList(allow(t, hostOf(t, srv.URL), hostOf(t, tlsSrv.URL)))
	got, d, err := artifacts.Fetch(ctx, srv.URL+"/m.wasm", digest.Of(mod), cfg)
	if err != nil || string(got) != string(mod) || d != digest.Of(mod) {
		t.Fatalf("fetch = %x, %s, %v", got, d, err)
	}
	got, _, err = artifacts.Fetch(ctx, tlsSrv.URL+"/m.wasm", "", cfg.WithHTTPClient(tlsSrv.Client()))
	if err != nil || string(got) != string(mod) {
		t.Fatalf("fetch over https = %x, %v", got, err)
	}

	bad := []struct {
		name, url string
		want      digest.Digest
		msg       string
		cfg       artifacts.ClientConfig
		is        error
	}{
		{"digest mismatch", srv.URL + "/m.wasm", (digest.Of([]byte("x"))), "want sha256:", cfg, artifacts.ErrDigestMismatch},
		{"oversize declared", srv.URL + "/big-declared.wasm", "", "limit", cfg, nil},
		{"oversize chunked", srv.URL + "/big-chunked.wasm", "", "limit", cfg, nil},
		{"empty", srv.URL + "/empty.wasm", "", "empty module", cfg, nil},
		{"not found", srv.URL + "/nope.wasm", "", "not found", cfg, artifacts.ErrNotFound},
		{"server error", srv.URL + "/fail.wasm?sig=secret", "", "HTTP 500 Internal Server Error", cfg, nil},
		{"timeout", srv.URL + "/slow.wasm?sig=secret", "", "deadline", cfg.WithTimeout(200 * time.Millisecond), context.DeadlineExceeded},
		{"untrusted certificate", tlsSrv.URL + "/m.wasm", "", "certificate", cfg, nil},
		{"no host", "http:///m.wasm", "", "no host", cfg, nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := artifacts.Fetch(ctx, tc.url, tc.want, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.is)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("err = %v shows the query", err)
			}
		})
	}
	if _, _, err := artifacts.FetchHTTP(ctx, "ftp://example/m.wasm", "", cfg); err == nil || !strings.Contains(err.Error(), "not http or https") {
		t.Fatalf("ftp = %v", err)
	}
}
