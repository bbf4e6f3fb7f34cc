package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/wasmbed/wasmbed/internal/tracing"
)

func TestSetupFromEnvironment(t *testing.T) {
	cases := []struct {
		name       string
		env        map[string]string
		err        string
		propagates bool // a span started after Setup has a trace context to send
	}{
		{"nothing configured", nil, "", true},
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "zipkin"}, "", false},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, "", true},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, `OTEL_TRACES_EXPORTER="zipkin"`, false},
		{"unknown protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`, false},
		// Nothing listens: the flush at stop gives up after the exporter's timeout.
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TIMEOUT": "200"}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_TIMEOUT"} {
				t.Setenv(k, tc.env[k])
			}
			prev := otel.GetTracerProvider()
			defer otel.SetTracerProvider(prev)
			otel.SetTracerProvider(noop.NewTracerProvider())
			stop, err := tracing.Setup(context.Background(), "wasmbed-test")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Setup: %v, want an error naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, span := tracing.New("operator").Start(context.Background(), "change")
			span.End()
			if got := tracing.TraceParent(ctx) != ""; got != tc.propagates {
				t.Errorf("a span has a trace context to send: %v, want %v", got, tc.propagates)
			}
			_ = stop(context.Background())
		})
	}
}

// TestExportsOverOTLP checks that OTEL_EXPORTER_OTLP_ENDPOINT alone sends spans to an
// OTLP/HTTP collector.
func TestExportsOverOTLP(t *testing.T) {
	var got atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" && len(body) > 0 {
			got.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)
	stop, err := tracing.Setup(context.Background(), "wasmbed-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.New("operator").Start(context.Background(), "change")
	span.End()
	if err := stop(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if got.Load() == 0 {
		t.Fatal("the collector received no spans")
	}
}

// TestEventsCarryTheTrace checks the hops' contract: a sent event names its send span
// in traceparent, the handler of that event continues the trace, and a kept
// traceparent continues it later.
func TestEventsCarryTheTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.TraceContext{})

	ctx, root := tracing.New("operator").Start(context.Background(), "change")
	e := cloudevents.NewEvent()
	e.SetID("1")
	e.SetSource("/test")
	e.SetType("dev.wasmbed.build.requested")
	_, end := tracing.New("operator").Send(ctx, &e)
	end(nil)
	root.End()
	tp, ok := e.Extensions()["traceparent"].(string)
	if !ok || !strings.Contains(tp, root.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %v, want the trace %s", e.Extensions()["traceparent"], root.SpanContext().TraceID())
	}
	hctx, done := tracing.New("compile").Process(context.Background(), &e)
	done(nil)
	kept := tracing.TraceParent(hctx)
	later, span := tracing.New("gateway").Start(tracing.FromTraceParent(context.Background(), kept), "later")
	span.End()
	_ = later

	plain := cloudevents.NewEvent()
	pctx, pend := tracing.New("compile").Process(context.Background(), &plain)
	pend(nil)
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "operator change", "operator dev.wasmbed.build.requested send", "compile dev.wasmbed.build.requested process", "gateway later":
			if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
				t.Errorf("span %q is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), root.SpanContext().TraceID())
			}
		}
	}
	if tracing.TraceParent(pctx) == "" || strings.Contains(tracing.TraceParent(pctx), root.SpanContext().TraceID().String()) {
		t.Error("an event without traceparent did not start a trace of its own")
	}
	if got := len(rec.Ended()); got != 5 {
		t.Errorf("%d spans, want 5", got)
	}
}
