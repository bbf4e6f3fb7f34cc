package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// web holds the built UI (console/web/dist, committed: see RATIONALE.md "Why is the
// console's built UI committed?"). dist/source-hash records the sources it was built
// from; TestDistIsFresh fails when they changed since.
//
//go:embed all:web/dist
var web embed.FS

//go:embed openapi.yaml
var openapi []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openapi)
}

// webHandler serves the UI: files of dist, and index.html for any other path so the
// UI's own routes survive a reload. Hashed assets are cached for a year.
func webHandler() http.Handler {
	dist, err := fs.Sub(web, "web/dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	files := http.FileServerFS(dist)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeJSON(w, http.StatusMethodNotAllowed, Error{Error: "method not allowed",
				Detail: "the UI is read with GET; the API is under /api/v1; CloudEvents are POSTed to /"})
			return
		}
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
		if p != "" && p != "index.html" {
			if st, err := fs.Stat(dist, p); err == nil && !st.IsDir() {
				if strings.HasPrefix(p, "assets/") {
					h.Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
		}
		index, err := fs.ReadFile(dist, "index.html")
		if err != nil {
			http.Error(w, "the console UI is not built: run console/web/install.sh && npm --prefix console/web run build", http.StatusNotFound)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write(index)
	})
}
