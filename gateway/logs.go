package gateway

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// LogLine is one console line a device sent.
type LogLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	App     string    `json:"app,omitempty"`
	Message string    `json:"message"`
}

// maxLogDevices bounds how many devices' log rings the gateway keeps.
const maxLogDevices = 100_000

// logBook keeps the last lines of each device in a ring, created on its first line.
type logBook struct {
	size int

	mu    sync.Mutex
	rings map[pki.Identity]*logRing
}

type logRing struct {
	lines []LogLine
	next  int
	full  bool
}

func newLogBook(size int) *logBook {
	return &logBook{size: size, rings: map[pki.Identity]*logRing{}}
}

func (b *logBook) add(id pki.Identity, l LogLine) {
	if b.size <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rings[id]
	if r == nil {
		if len(b.rings) >= maxLogDevices {
			for k := range b.rings { // drop an arbitrary device's lines
				delete(b.rings, k)
				break
			}
		}
		r = &logRing{}
		b.rings[id] = r
	}
	if len(r.lines) < b.size {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % b.size
}

// Lines returns a device's kept lines, oldest first.
func (b *logBook) Lines(id pki.Identity) []LogLine {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rings[id]
	if r == nil {
		return []LogLine{}
	}
	out := make([]LogLine, 0, len(r.lines))
	out = append(out, r.lines[r.next:]...)
	return append(out, r.lines[:r.next]...)
}

// DeviceLog returns the last log lines a device sent, oldest first.
func (s *Server) DeviceLog(id pki.Identity) []LogLine { return s.logs.Lines(id) }

// serveLog answers GET /devices/{namespace}/{name}/log.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request) {
	id, err := pki.NewIdentity(r.PathValue("namespace"), r.PathValue("name"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Device    string    `json:"device"`
		Connected bool      `json:"connected"`
		Lines     []LogLine `json:"lines"`
	}{id.String(), s.Connected(id), s.logs.Lines(id)})
}
