package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Error is the body of every failed API call: a short phrase and what to do about
// it, with the apiserver's own message (e.g. the CRD validation message naming the
// field) in Detail, and the fields it names in Causes.
type Error struct {
	Error  string  `json:"error"`
	Detail string  `json:"detail,omitempty"`
	Causes []Cause `json:"causes,omitempty"`
}

// Cause is one invalid field the apiserver named.
type Cause struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// httpError is an error with a status and a message for the user.
type httpError struct {
	code   int
	msg    string
	detail string
}

func (e *httpError) Error() string { return e.msg + ": " + e.detail }

func badRequest(msg, detail string) error {
	return &httpError{code: http.StatusBadRequest, msg: msg, detail: detail}
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody turns an error into a status code and a JSON body. The apiserver's status
// (403, 404, 409, 422...) is passed through with its message.
func errorBody(err error) (int, Error) {
	var he *httpError
	if errors.As(err, &he) {
		return he.code, Error{Error: he.msg, Detail: he.detail}
	}
	if errors.Is(err, errNoToken) {
		return http.StatusUnauthorized, Error{Error: "not signed in",
			Detail: "send Authorization: Bearer <token>; in `make run` paste the token `wasmbed dev` prints"}
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		code := int(s.Code)
		if code == 0 {
			code = http.StatusInternalServerError
		}
		body := Error{Error: phrase(s.Reason, code), Detail: s.Message}
		if s.Details != nil {
			for _, c := range s.Details.Causes {
				body.Causes = append(body.Causes, Cause{Field: c.Field, Message: c.Message})
			}
		}
		if code == http.StatusUnauthorized {
			body.Detail = "the apiserver refused the token (expired or unknown): sign in again; " + s.Message
		}
		return code, body
	}
	return http.StatusBadGateway, Error{Error: "kubernetes api unreachable", Detail: err.Error()}
}

// phrase is a short lower-case summary of an apiserver status reason.
func phrase(reason metav1.StatusReason, code int) string {
	if reason == "" {
		return strings.ToLower(http.StatusText(code))
	}
	var b strings.Builder
	for i, r := range string(reason) {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, body := errorBody(err)
	if code >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	writeJSON(w, code, body)
}
