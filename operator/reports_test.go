package operator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// summary plays gateway gw's deployment.summarized for ref's module dg.
func (h *harness) summary(ref events.AppRef, gw string, dg digest.Digest, epoch time.Time, seq int64, devices, succeeded, failed int, failures ...events.DeviceFailure) {
	h.t.Helper()
	d := &events.DeploymentSummaryData{Application: ref, Gateway: v1.Ref{Namespace: "wasmbed-system", Name: gw}, Digest: dg,
		Epoch: epoch, Seq: seq, Devices: devices, Succeeded: succeeded, Failed: failed, FirstFailures: failures}
	for _, f := range failures {
		if d.FailuresByType == nil {
			d.FailuresByType = map[v1.FailureType]int{}
		}
		d.FailuresByType[f.Failure]++
	}
	h.deliver(events.DeploymentSummarized, ref.Subject(), d)
}

// TestRolloutCountedFromGatewayReports: a rollout completes on what two gateways sum up,
// with no device result at all; older and foreign summaries change nothing; a failure
// a summary counts stops the next rollout and names the device.
func TestRolloutCountedFromGatewayReports(t *testing.T) {
	h := start(t)
	h.devices(4, "virtual")
	h.app("fleet", nil)
	ref := h.waitBuild("fleet", 1)
	dg := digestOf("a")
	h.buildAndValidate(ref, dg)
	h.eventually("rolling out", func() bool { return h.get("fleet").Status.Phase == v1.ApplicationRollingOut })

	epoch := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	h.summary(ref, "gw-a", dg, epoch, 1, 2, 2, 0)
	h.summary(ref, "gw-b", dg, epoch, 1, 2, 1, 0)
	h.eventually("3 of 4 counted", func() bool {
		ro := h.get("fleet").Status.Rollout
		return ro != nil && ro.Succeeded == 3
	})
	// Another object of the same name, and an older summary of gw-b, are ignored.
	foreign := ref
	foreign.UID = "another-object"
	h.summary(foreign, "gw-b", dg, epoch, 9, 2, 0, 0)
	h.summary(ref, "gw-b", dg, epoch.Add(-time.Hour), 50, 2, 0, 0)
	h.summary(ref, "gw-b", dg, epoch, 2, 2, 2, 0)
	h.waitTrue("fleet", v1.ConditionReady)
	a := h.get("fleet")
	if a.Status.Rollout.Progress != "4/4" || len(a.Status.GatewayReports) != 2 {
		t.Fatalf("rollout %+v reports %+v", a.Status.Rollout, a.Status.GatewayReports)
	}
	if r := a.Status.GatewayReports[1]; r.Gateway != "wasmbed-system/gw-b" || r.Succeeded != 2 || r.Seq != 2 || r.Generation != ref.Generation {
		t.Errorf("gw-b's report %+v", r)
	}

	// Version 2 fails to start on a device of gw-a: with maxFailures 0 the rollout stops
	// and rolls back, naming the device.
	h.update("fleet", func(a *v1.Application) { a.Spec.Source.Inline.Code = "int v2;" })
	ref2 := h.waitBuild("fleet", 2)
	bad := digestOf("b")
	h.buildAndValidate(ref2, bad)
	h.eventually("rolling out v2", func() bool {
		r := h.get("fleet").Status.Rollout
		return r != nil && r.Digest == bad
	})
	h.summary(ref2, "gw-a", bad, epoch, 3, 2, 1, 1, events.DeviceFailure{Device: "dev-01", Failure: v1.FailureStart, Message: "setup: unreachable"})
	h.eventually("rolled back", func() bool {
		c := h.cond("fleet", v1.ConditionRolledOut)
		return c != nil && c.Reason == v1.ReasonRolledBack
	})
	a = h.get("fleet")
	if !strings.Contains(a.Status.Rollout.FirstFailure, "dev-01: setup: unreachable") || a.Status.Rollout.Failed != 1 {
		t.Errorf("rollout %+v", a.Status.Rollout)
	}
	// The reports of both modules are kept (the current one and the previous good one).
	if len(a.Status.GatewayReports) != 3 {
		t.Errorf("reports %+v", a.Status.GatewayReports)
	}
}
