package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/wasmbed/wasmbed/internal/eventauth"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/wasmbed/wasmbed/api/events"
)

// Subscriptions are the event types the console subscribes to (events.Subscriptions,
// the trigger table of a cluster and of `make run`).
var Subscriptions = events.Subscriptions["console"]

// maxEventBytes bounds an incoming CloudEvent.
const maxEventBytes = 1 << 20

// CloudEvent is the data of a "cloudevent" stream event.
type CloudEvent struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Source    string          `json:"source"`
	Subject   string          `json:"subject,omitempty"`
	Time      time.Time       `json:"time"`
	Namespace string          `json:"namespace"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// receiveEvent takes a CloudEvent (binary or structured mode) on POST / and fans it
// out to the stream clients. A contract violation is a 400, which the broker does not
// retry; the console never answers 5xx, it has nothing to retry.
func (s *Server) receiveEvent(w http.ResponseWriter, r *http.Request) {
	sender, ok := eventauth.Admit(s.cfg.EventAuth, w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxEventBytes)
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, Error{Error: "not a cloudevent", Detail: err.Error()})
		return
	}
	if err := s.cfg.EventAuth.Authorize(r, sender, e.Type()); err != nil {
		eventauth.Write(w, err)
		return
	}
	if err := e.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, Error{Error: "invalid cloudevent", Detail: err.Error()})
		return
	}
	if _, err := events.Decode(*e); err != nil {
		writeJSON(w, http.StatusBadRequest, Error{Error: "not a wasmbed event", Detail: err.Error()})
		return
	}
	ns, _ := e.Extensions()[events.ExtNamespace].(string)
	if ns == "" {
		ns, _, _ = strings.Cut(e.Subject(), "/")
	}
	t := e.Time()
	if t.IsZero() {
		t = time.Now()
	}
	ce := CloudEvent{ID: e.ID(), Type: e.Type(), Source: e.Source(), Subject: e.Subject(), Time: t,
		Namespace: ns, Data: json.RawMessage(e.Data())}
	s.m.events.WithLabelValues(e.Type()).Inc()
	s.hub.publish(message{event: sseCloudEvent, data: mustJSON(ce), namespace: ns, resource: resourceOfEvent(e.Type())})
	w.WriteHeader(http.StatusAccepted)
}
