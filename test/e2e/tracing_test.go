package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/tracing"
)

// attr returns span s's string attribute k.
func attr(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestOneChangeIsOneTrace checks that one Application change is one trace spanning
// every hop: the operator's change, compile, validate, dispatch, the gateway's
// deployment, each device's result sent back and the operator receiving it; each event
// carries the trace in its traceparent.
func TestOneChangeIsOneTrace(t *testing.T) {
	app := &v1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "traced", Namespace: "default"},
		Spec: v1.ApplicationSpec{
			Source:   v1.ApplicationSource{Inline: &v1.InlineSource{Language: v1.LanguageC, Code: goodC}},
			Selector: metav1.LabelSelector{},
		},
	}
	created := time.Now() // earlier runs' spans for an object of the same name started before
	if err := c().Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	defer remove(t, app)
	eventually(t, "traced Ready", 2*time.Minute, func() (bool, string) { return ready(t, "traced") })

	// The change's root span, and every span of its trace.
	var root sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "operator change" && attr(s, "wasmbed.uid") == string(app.UID) {
			if root != nil {
				t.Fatalf("two traces for one change: %s and %s", root.SpanContext().TraceID(), s.SpanContext().TraceID())
			}
			root = s
		}
	}
	if root == nil {
		t.Fatal("no operator change span for default/traced")
	}
	id := root.SpanContext().TraceID()
	want := []string{
		"operator dev.wasmbed.build.requested send",
		"compile dev.wasmbed.build.requested process",
		"validate dev.wasmbed.module.built process",
		"dispatch dev.wasmbed.module.validated process",
		"dispatch dev.wasmbed.deployment.requested send",
		"gateway dev.wasmbed.deployment.requested process",
		"gateway dev.wasmbed.deployment.succeeded send",
		"operator dev.wasmbed.deployment.succeeded process",
	}
	// Wait for the last hops' spans: the operator ends its span after the status write.
	var got []string
	var inTrace []sdktrace.ReadOnlySpan
	eventually(t, "every hop's span in the trace", 30*time.Second, func() (bool, string) {
		got, inTrace = nil, nil
		for _, s := range spans.Ended() {
			if s.SpanContext().TraceID() == id {
				inTrace = append(inTrace, s)
				if !slices.Contains(got, s.Name()) {
					got = append(got, s.Name())
				}
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false, "missing " + w + "; have " + strings.Join(got, ", ")
			}
		}
		return true, ""
	})
	// Every device result the gateway sent for this Application is in the trace: a
	// result's span ends when the broker answered, so wait until the ones there are all
	// ended and counted. (A device that reconnected mid-rollout may report Running in its
	// Hello instead, which is not a deployment result: so not one per device.)
	eventually(t, "every device result in the trace", 30*time.Second, func() (bool, string) {
		in, out := 0, 0
		for _, s := range spans.Ended() {
			if s.Name() != "gateway dev.wasmbed.deployment.succeeded send" || attr(s, "cloudevents.event_subject") != "default/traced" ||
				s.StartTime().Before(created) {
				continue
			}
			if s.SpanContext().TraceID() == id {
				in++
			} else {
				out++
			}
		}
		if out > 0 {
			t.Fatalf("%d results for default/traced were sent outside its trace", out)
		}
		return in >= devices*9/10, fmt.Sprintf("%d of %d device results in the trace", in, devices)
	})
	// One tree: every span's parent is in the trace (or it is the root), and the
	// devices' results number one per device.
	ids := map[trace.SpanID]bool{}
	for _, s := range inTrace {
		ids[s.SpanContext().SpanID()] = true
	}
	results := 0
	for _, s := range inTrace {
		if s.SpanContext().SpanID() != root.SpanContext().SpanID() && !ids[s.Parent().SpanID()] {
			t.Errorf("span %q has a parent outside the trace", s.Name())
		}
		if s.Name() == "gateway dev.wasmbed.deployment.succeeded send" {
			results++
			if attr(s, tracing.AttrComponent) != "gateway" {
				t.Errorf("result span %q from component %q", s.Name(), attr(s, tracing.AttrComponent))
			}
		}
	}
	if results == 0 {
		t.Error("no device result in the trace")
	}
	t.Logf("one trace %s: %d spans, %d device results", id, len(inTrace), results)
}
