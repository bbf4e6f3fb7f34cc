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
		// A device's result span ends when the broker answered the gateway, which
		// may be after the operator already counted the result.
		n := 0
		for _, s := range inTrace {
			if s.Name() == "gateway dev.wasmbed.deployment.succeeded send" {
				n++
			}
		}
		return n >= devices, fmt.Sprintf("%d of %d device results", n, devices)
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
	if results < devices {
		t.Errorf("%d device results in the trace, want one per device (%d)", results, devices)
	}
	t.Logf("one trace %s: %d spans, %d device results", id, len(inTrace), results)
}
