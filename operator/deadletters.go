package operator

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// deadLetters logs the events the broker gave up on (its dead-letter sink), with the
// destination and error Knative records in the knativeerror* extensions.
func deadLetters(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		ext := e.Extensions()
		data := ""
		if s, ok := ext["knativeerrordata"].(string); ok {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				data = string(b)
			}
		}
		log.Warn("event not delivered", "type", e.Type(), "subject", e.Subject(), "id", e.ID(),
			"destination", fmt.Sprint(ext["knativeerrordest"]), "code", fmt.Sprint(ext["knativeerrorcode"]), "error", data)
		w.WriteHeader(http.StatusAccepted)
	})
}
