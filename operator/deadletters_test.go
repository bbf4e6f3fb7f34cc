package operator

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDeadLettersAreLogged(t *testing.T) {
	var out bytes.Buffer
	h := deadLetters(slog.New(slog.NewTextHandler(&out, nil)))
	req := httptest.NewRequest(http.MethodPost, "/dead-letters", strings.NewReader(`{}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "7", "ce-type": "dev.wasmbed.module.built", "ce-source": "/x",
		"ce-knativeerrordest": "http://validate", "ce-knativeerrorcode": "500", "ce-knativeerrordata": "Ym9vbQ==", "content-type": "application/json"} {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	for _, want := range []string{"dev.wasmbed.module.built", "http://validate", "code=500", "error=boom"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log %q lacks %q", out.String(), want)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/dead-letters", strings.NewReader("x")))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("a non-event got %d", rec.Code)
	}
}
