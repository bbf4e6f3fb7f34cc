package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Stream event names (the SSE "event:" field).
const (
	// sseReady is sent once the watches run: the client (re)loads its lists then.
	// Its data names the kinds watched: {kinds: [...]}.
	sseReady = "ready"
	// sseChange is an object added, modified or deleted: {type, kind, object}.
	sseChange = "change"
	// sseResync asks the client to reload a kind's list: {kind}.
	sseResync = "resync"
	// sseCloudEvent is a dev.wasmbed.* CloudEvent: {id, type, source, subject, time, namespace, data}.
	sseCloudEvent = "cloudevent"
	// sseDropped is the last message to a client that fell behind.
	sseDropped = "dropped"
)

// message is one SSE message. A CloudEvent carries the namespace and the resource a
// client must be allowed to get in it to see the event.
type message struct {
	event     string
	data      []byte
	namespace string
	resource  string
}

// streamClient is one connected stream. Its buffer is bounded: a client that falls
// behind is dropped, it never slows the others.
type streamClient struct {
	ch     chan message
	gone   chan struct{}
	once   sync.Once
	reason string
}

func newStreamClient(buffer int) *streamClient {
	return &streamClient{ch: make(chan message, buffer), gone: make(chan struct{})}
}

// drop ends the client once, recording why.
func (c *streamClient) drop(reason string) {
	c.once.Do(func() {
		c.reason = reason
		close(c.gone)
	})
}

// hub fans messages out to stream clients. Lock order: hub.mu only; clients are
// signalled with non-blocking sends and channel closes.
type hub struct {
	dropped prometheus.Counter

	mu      sync.Mutex
	clients map[*streamClient]struct{}
	closed  bool
}

func newHub(dropped prometheus.Counter) *hub {
	return &hub{dropped: dropped, clients: map[*streamClient]struct{}{}}
}

// add registers c; false once the hub is closed.
func (h *hub) add(c *streamClient) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c] = struct{}{}
	return true
}

func (h *hub) remove(c *streamClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

// send queues m for c without blocking; a full buffer drops c.
func (h *hub) send(c *streamClient, m message) bool {
	select {
	case <-c.gone:
		return false
	default:
	}
	select {
	case c.ch <- m:
		return true
	default:
		h.remove(c)
		c.drop("slow client: more than " + fmt.Sprint(cap(c.ch)) + " messages behind")
		h.dropped.Inc()
		return false
	}
}

// publish queues m for every client.
func (h *hub) publish(m message) {
	h.mu.Lock()
	clients := make([]*streamClient, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	for _, c := range clients {
		h.send(c, m)
	}
}

// count returns the number of clients.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// close drops every client and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		c.drop("server shutting down")
		delete(h.clients, c)
	}
}

// Change is the data of a "change" stream event.
type Change struct {
	Type   watch.EventType `json:"type"`
	Kind   string          `json:"kind"`
	Object client.Object   `json:"object"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return b
}

// stream serves GET /api/v1/stream: server-sent events of changes to Devices,
// Applications and Gateways (watched as the user) and of dev.wasmbed.* CloudEvents
// (shown only for namespaces where the user may get the subject's kind).
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	tok, err := bearerToken(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.clientFor(tok)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ns := r.URL.Query().Get("namespace")
	ctx, cancel := context.WithCancel(r.Context())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// List first, as the user: kinds the user may not list are left out; when none
	// is allowed, the apiserver's 403 is answered as JSON before the stream starts.
	type watched struct {
		k  kind
		rv string
	}
	var ws []watched
	var names []string
	var denied error
	for _, k := range kinds {
		rv, err := listVersion(ctx, c, k, ns)
		switch {
		case apierrors.IsForbidden(err):
			denied = err
		case err != nil:
			s.writeError(w, r, err)
			return
		default:
			ws = append(ws, watched{k, rv})
			names = append(names, k.name)
		}
	}
	if len(ws) == 0 {
		s.writeError(w, r, denied)
		return
	}
	sc := newStreamClient(s.cfg.ClientBuffer)
	if !s.hub.add(sc) {
		writeJSON(w, http.StatusServiceUnavailable, Error{Error: "shutting down", Detail: "the console is stopping: reload in a moment"})
		return
	}
	s.m.clients.Inc()
	defer func() {
		s.hub.remove(sc)
		s.m.clients.Dec()
	}()
	for _, x := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.watchKind(ctx, c, x.k, ns, x.rv, sc)
		}()
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(event string, data []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		var err error
		if event == "" {
			_, err = fmt.Fprint(w, ": keepalive\n\n")
		} else {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		}
		if err == nil {
			err = rc.Flush()
		}
		return err
	}
	if write(sseReady, mustJSON(map[string][]string{"kinds": names})) != nil {
		return
	}
	allowed := map[string]bool{} // "<resource> <namespace>" -> may get
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sc.gone:
			_ = write(sseDropped, mustJSON(map[string]string{"reason": sc.reason}))
			return
		case <-tick.C:
			if write("", nil) != nil {
				return
			}
		case m := <-sc.ch:
			if m.resource != "" && !s.mayGet(ctx, c, allowed, m.resource, m.namespace, ns) {
				continue
			}
			if write(m.event, m.data) != nil {
				return
			}
		}
	}
}

// mayGet says whether the stream's user may see a CloudEvent about resource in
// namespace evNS; answers are cached for the stream's life.
func (s *Server) mayGet(ctx context.Context, c client.Client, cache map[string]bool, resource, evNS, streamNS string) bool {
	if evNS == "" || (streamNS != "" && evNS != streamNS) {
		return false
	}
	key := resource + " " + evNS
	ok, seen := cache[key]
	if !seen {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		if ok, err = canI(actx, c, "get", resource, evNS); err != nil {
			s.log.Debug("stream access review", "resource", resource, "namespace", evNS, "err", err)
			return false // asked again on the next event
		}
		cache[key] = ok
	}
	return ok
}

// listVersion lists one object of a kind to learn the collection's resourceVersion, so
// the watch starts from now without replaying every object.
func listVersion(ctx context.Context, c client.Client, k kind, ns string) (string, error) {
	list := k.newList()
	if err := c.List(ctx, list, &client.ListOptions{Namespace: ns, Limit: 1}); err != nil {
		return "", err
	}
	la, err := meta.ListAccessor(list)
	if err != nil {
		return "", err
	}
	return la.GetResourceVersion(), nil
}

// watchKind forwards a kind's watch events to sc until ctx ends or sc is dropped. A
// watch that ends is resumed from the last resourceVersion; one that expired (410)
// restarts from a fresh list and tells the client to reload.
func (s *Server) watchKind(ctx context.Context, c client.WithWatch, k kind, ns, rv string, sc *streamClient) {
	for ctx.Err() == nil {
		if rv == "" {
			var err error
			if rv, err = listVersion(ctx, c, k, ns); err != nil {
				if !s.pause(ctx, k, err) {
					return
				}
				continue
			}
			if !s.hub.send(sc, message{event: sseResync, data: mustJSON(map[string]string{"kind": k.name})}) {
				return
			}
		}
		wi, err := c.Watch(ctx, k.newList(), &client.ListOptions{Namespace: ns,
			Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				rv = ""
				continue
			}
			if !s.pause(ctx, k, err) {
				return
			}
			continue
		}
		var ok bool
		rv, ok = s.forward(ctx, wi, k, rv, sc)
		wi.Stop()
		if !ok {
			return
		}
	}
}

// forward copies one watch's events to sc; it returns the resourceVersion to resume
// from ("" after an expiry) and false when the stream is over.
func (s *Server) forward(ctx context.Context, wi watch.Interface, k kind, rv string, sc *streamClient) (string, bool) {
	for {
		select {
		case <-ctx.Done():
			return rv, false
		case <-sc.gone:
			return rv, false
		case ev, open := <-wi.ResultChan():
			if !open {
				return rv, true
			}
			switch ev.Type {
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				s.log.Debug("watch error", "kind", k.name, "err", err)
				return "", true
			case watch.Bookmark:
				if a, err := meta.Accessor(ev.Object); err == nil {
					rv = a.GetResourceVersion()
				}
			case watch.Added, watch.Modified, watch.Deleted:
				obj, isObj := ev.Object.(client.Object)
				if !isObj {
					continue
				}
				rv = obj.GetResourceVersion()
				obj.SetManagedFields(nil)
				if !s.hub.send(sc, message{event: sseChange, data: mustJSON(Change{Type: ev.Type, Kind: k.name, Object: obj})}) {
					return rv, false
				}
			}
		}
	}
}

// pause waits before a watch is retried; false when ctx ended.
func (s *Server) pause(ctx context.Context, k kind, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	s.log.Info("watch failed; retrying", "kind", k.name, "err", err)
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// resourceOfEvent is the Wasmbed resource a CloudEvent type is about, for the
// per-client access check: device events need get on devices, the others on
// applications.
func resourceOfEvent(t string) string {
	if strings.HasPrefix(t, "dev.wasmbed.device.") {
		return "devices"
	}
	return "applications"
}
