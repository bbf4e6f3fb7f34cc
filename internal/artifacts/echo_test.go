package artifacts_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	godigest "github.com/opencontainers/go-digest"

	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// secret marks every piece of text the servers below send; no error may show it.
const secret = "SECRET-internal-answer"

// rawServer answers every connection on 127.0.0.1 with response, verbatim, and
// returns its host:port.
func rawServer(t *testing.T, response string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					_, _ = c.Write([]byte(response))
				}
			}()
		}
	}()
	return l.Addr().String()
}

// An answer other than 200 is reported by its status code: never the reason phrase
// or the body, which are the server's text.
func TestFetchHTTPQuotesNoAnswer(t *testing.T) {
	body := "the answer of an internal service: " + secret
	for _, tc := range []struct {
		status string
		want   string
	}{
		{"500 " + secret, "HTTP 500 Internal Server Error"},
		{"403 Forbidden", "HTTP 403 Forbidden"},
		{"302 Found", "HTTP 302 Found"}, // a redirect without a Location
		{"299 " + secret, "HTTP 299 "},
	} {
		t.Run(tc.status, func(t *testing.T) {
			host := rawServer(t, fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: text/plain\r\nX-Detail: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", tc.status, secret, len(body), body))
			cfg := artifacts.NewClientConfig().WithAllowList(allow(t, host))
			_, _, err := artifacts.Fetch(context.Background(), "http://"+host+"/m.wasm", "", cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("err = %v quotes the server", err)
			}
		})
	}
}

// A registry's error answers, headers and manifests are reported without quoting
// them: status codes, well-formed error codes and counts only.
func TestFetchOCIQuotesNoAnswer(t *testing.T) {
	errorBody := func(code string) string {
		b, _ := json.Marshal(map[string]any{"errors": []map[string]any{{"code": code, "message": secret, "detail": map[string]string{"why": secret}}}})
		return string(b)
	}
	manifest := func(layers ...map[string]any) string {
		b, _ := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": map[string]any{"mediaType": "application/vnd.wasm.config.v0+json", "digest": "sha256:" + strings.Repeat("0", 64), "size": 2},
			"layers": layers,
		})
		return string(b)
	}
	type answer struct {
		status      int
		contentType string
		digest      string // Docker-Content-Digest; "auto" for the body's
		body        string
	}
	mod := module(31)
	modDigest := godigest.FromBytes(mod).String()
	cases := map[string]struct {
		manifest, blob answer
		want           string
	}{
		"unauthorized": {manifest: answer{http.StatusUnauthorized, "application/json", "", errorBody("UNAUTHORIZED")},
			want: "HTTP 401 Unauthorized (UNAUTHORIZED)"},
		"denied with a malformed code": {manifest: answer{http.StatusForbidden, "application/json", "", errorBody("DENIED " + secret)},
			want: "HTTP 403 Forbidden"},
		// (4xx: a 5xx is retried with backoff first, which only slows the test down)
		"an html page": {manifest: answer{http.StatusBadRequest, "text/html", "", "<h1>" + secret + "</h1>"},
			want: "HTTP 400 Bad Request"},
		"bad digest header": {manifest: answer{http.StatusOK, "application/vnd.oci.image.manifest.v1+json", "sha256:" + secret, manifest()},
			want: "malformed"},
		"another media type": {manifest: answer{http.StatusOK, "application/x-" + secret, "auto", manifest()},
			want: "another media type than an image manifest"},
		"not json": {manifest: answer{http.StatusOK, "application/vnd.oci.image.manifest.v1+json", "auto", "{" + secret},
			want: "not a JSON image manifest"},
		"layers of other types": {manifest: answer{http.StatusOK, "application/vnd.oci.image.manifest.v1+json", "auto",
			manifest(map[string]any{"mediaType": "application/x-" + secret, "digest": modDigest, "size": len(mod)})},
			want: "no application/wasm layer (it has 1 of other media types)"},
		"malformed layer digest": {manifest: answer{http.StatusOK, "application/vnd.oci.image.manifest.v1+json", "auto",
			manifest(map[string]any{"mediaType": "application/wasm", "digest": "sha256:" + secret, "size": len(mod)})},
			want: "layer's digest is malformed"},
		"blob denied": {manifest: answer{http.StatusOK, "application/vnd.oci.image.manifest.v1+json", "auto",
			manifest(map[string]any{"mediaType": "application/wasm", "digest": modDigest, "size": len(mod)})},
			blob: answer{http.StatusForbidden, "application/json", "", errorBody("DENIED")},
			want: "HTTP 403 Forbidden (DENIED)"},
	}
	write := func(w http.ResponseWriter, a answer) {
		w.Header().Set("Content-Type", a.contentType)
		w.Header().Set("X-Detail", secret)
		switch a.digest {
		case "auto":
			w.Header().Set("Docker-Content-Digest", godigest.FromString(a.body).String())
		case "":
		default:
			w.Header().Set("Docker-Content-Digest", a.digest)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}
	srv, _ := moduleServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		// /v2/<case>/manifests/v1 or /v2/<case>/blobs/<digest>
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
		if len(parts) < 3 {
			http.NotFound(w, r)
			return
		}
		tc, ok := cases[strings.ReplaceAll(parts[0], "-", " ")]
		switch {
		case !ok:
			http.NotFound(w, r)
		case parts[1] == "manifests":
			write(w, tc.manifest)
		case parts[1] == "blobs":
			write(w, tc.blob)
		default:
			http.NotFound(w, r)
		}
	})
	host := hostOf(t, srv.URL)
	cfg := artifacts.NewClientConfig().WithAllowList(allow(t, host))
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := artifacts.Fetch(context.Background(), "oci+http://"+host+"/"+strings.ReplaceAll(name, " ", "-")+":v1", "", cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("err = %v quotes the registry", err)
			}
		})
	}
}

// A registry that sends the client to a token service on an address the allow-list
// does not trust gets no request there.
func TestFetchOCIGuardsTheTokenRealm(t *testing.T) {
	tokens, tokenConns := moduleServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"token":"t"}`))
	})
	reg, _ := moduleServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="x",scope="repository:m:pull"`, tokens.URL))
		w.WriteHeader(http.StatusUnauthorized)
	})
	cfg := artifacts.NewClientConfig().WithAllowList(allow(t, hostOf(t, reg.URL)))
	_, _, err := artifacts.Fetch(context.Background(), "oci+http://"+hostOf(t, reg.URL)+"/m:v1", "", cfg)
	refusal(t, err, hostOf(t, tokens.URL), "loopback")
	noConnections(t, tokenConns)
}
