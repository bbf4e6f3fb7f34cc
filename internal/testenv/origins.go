package testenv

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Origins are two module servers on loopback for tests of fetching: Listed is the one a
// test allow-lists, Unlisted must never be reached (Reached counts its requests).
type Origins struct {
	Listed, Unlisted *httptest.Server
	Reached          *atomic.Int64
}

// StartOrigins serves module at /blink.wasm on both servers. Listed also redirects
// /redirect?to=URL there and answers /fail with a 500 whose body is secret, which an
// error a user sees must never quote. Both stop when the test ends.
func StartOrigins(t testing.TB, module []byte, secret string) Origins {
	t.Helper()
	o := Origins{Reached: new(atomic.Int64)}
	o.Unlisted = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.Reached.Add(1)
		_, _ = w.Write(module)
	}))
	t.Cleanup(o.Unlisted.Close)
	o.Listed = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/blink.wasm":
			_, _ = w.Write(module)
		case "/redirect":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		case "/fail":
			http.Error(w, secret, http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(o.Listed.Close)
	return o
}
