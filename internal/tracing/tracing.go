// Package tracing follows one Application change across the pipeline with
// OpenTelemetry: every event a component sends carries the W3C trace context in its
// `traceparent` and `tracestate` attributes (the CloudEvents distributed-tracing
// extension), and every component continues the trace of the event it handles. Spans
// come from the CloudEvents SDK's observability module; exporters are configured by the
// standard OTEL_* environment variables (Setup).
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	otelObs "github.com/cloudevents/sdk-go/observability/opentelemetry/v2/client"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// AttrComponent names the Wasmbed component that made a span (operator, compile,
// validate, dispatch, gateway).
const AttrComponent = attribute.Key("wasmbed.component")

// Setup installs the process's tracer provider for service, from the standard
// environment: OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turns tracing off;
// OTEL_TRACES_EXPORTER=otlp (the default once OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set) exports over OTLP, with
// OTEL_EXPORTER_OTLP_PROTOCOL (or ..._TRACES_PROTOCOL) http/protobuf (default) or grpc,
// and the exporters' other OTEL_EXPORTER_OTLP_* settings; OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and its argument are honoured. Without
// any of these nothing is exported, but spans get ids and the trace context still
// propagates (OTEL_SDK_DISABLED=true stops that too). The returned
// function flushes and stops the exporter.
func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	noop := func(context.Context) error { return nil }
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return noop, nil
	}
	exporter, err := exporterFromEnv(ctx)
	if err != nil {
		return noop, err
	}
	if exporter == nil {
		// No exporter: spans still get real ids, so the trace context rides on the
		// events (a broker's or another service's tracing can join it); none is kept.
		tp := sdktrace.NewTracerProvider()
		otel.SetTracerProvider(tp)
		return tp.Shutdown, nil
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(service)))
	if err != nil {
		return noop, fmt.Errorf("tracing: resource: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default parent-based always-on).
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

func exporterFromEnv(ctx context.Context) (sdktrace.SpanExporter, error) {
	kind := os.Getenv("OTEL_TRACES_EXPORTER")
	if kind == "" && (os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		kind = "otlp"
	}
	switch kind {
	case "", "none":
		return nil, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: this build exports otlp or none", kind)
	}
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	return exp, nil
}

// Tracer makes one component's spans for the events it sends and handles.
type Tracer struct {
	component string
	obs       *otelObs.OTelObservabilityService
}

// New returns the Tracer of component, on the global tracer provider.
func New(component string) *Tracer {
	return &Tracer{component: component, obs: otelObs.NewOTelObservabilityService(
		otelObs.WithSpanNameFormatter(func(e cloudevents.Event) string { return component + " " + e.Type() }),
		otelObs.WithSpanAttributesGetter(func(e cloudevents.Event) []attribute.KeyValue {
			return []attribute.KeyValue{AttrComponent.String(component), attribute.String("cloudevents.event_subject", e.Subject())}
		}),
	)}
}

// Send starts a producer span for sending e as a child of ctx's span and writes the
// span's context into e's traceparent and tracestate. end records how sending ended.
func (t *Tracer) Send(ctx context.Context, e *cloudevents.Event) (context.Context, func(error)) {
	ctx, end := t.obs.RecordSendingEvent(ctx, *e)
	otelObs.InjectDistributedTracingExtension(ctx, *e)
	return ctx, end
}

// Process starts a consumer span for handling e, continuing the trace e carries (its
// traceparent); an event without one starts a new trace. end records how handling ended.
func (t *Tracer) Process(ctx context.Context, e *cloudevents.Event) (context.Context, func(error)) {
	return t.obs.RecordCallingInvoker(Continue(ctx, *e), e)
}

// Inject writes ctx's span context into e's traceparent and tracestate, e.g. into a
// reply that continues the handled event's trace.
func Inject(ctx context.Context, e *cloudevents.Event) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		otelObs.InjectDistributedTracingExtension(ctx, *e)
	}
}

// Start starts a span of the component outside any event, e.g. the operator's span for
// one Application change, which every event of that change descends from.
func (t *Tracer) Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append(attrs, AttrComponent.String(t.component))
	return otel.Tracer("github.com/wasmbed/wasmbed").Start(ctx, t.component+" "+name, trace.WithAttributes(attrs...))
}

// Continue returns ctx carrying the trace context e carries (its traceparent), or ctx
// unchanged when e carries none.
func Continue(ctx context.Context, e cloudevents.Event) context.Context {
	if _, ok := e.Extensions()["traceparent"]; !ok {
		return ctx
	}
	return otelObs.ExtractDistributedTracingExtension(ctx, e)
}

// TraceParent returns the W3C traceparent of ctx's span, "" without one: what a
// component stores to continue the trace later (a gateway's deployment record).
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent")
}

// FromTraceParent returns ctx whose remote parent is the span tp names (a W3C
// traceparent from TraceParent); ctx unchanged when tp does not parse.
func FromTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}
