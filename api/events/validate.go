package events

import (
	"fmt"

	"github.com/wasmbed/wasmbed/api/protocol"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// MaxSourceBytes is the largest source text a build request may carry.
const MaxSourceBytes = 256 * 1024

// Validate checks the reference.
func (a AppRef) Validate() error {
	return firstErr(
		checkNamespace("application.namespace", a.Namespace),
		checkName("application.name", a.Name),
		func() error {
			if a.Generation < 1 {
				return fmt.Errorf("application.generation must be at least 1, not %d", a.Generation)
			}
			return nil
		}(),
	)
}

// Validate checks the build request.
func (d *BuildRequestedData) Validate() error {
	if err := d.Application.Validate(); err != nil {
		return err
	}
	s := d.Source
	switch {
	case s.Module != nil && s.Code != "":
		return fmt.Errorf("source has both code and module; give one")
	case s.Module != nil:
		m := s.Module
		n := 0
		for _, v := range []bool{m.OCI != "", m.URL != "", m.ConfigMap != nil} {
			if v {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("source.module needs one of oci, url or configMap, not several")
		}
		if n == 0 && m.Digest == "" {
			return fmt.Errorf("source.module needs oci, url, configMap or a digest already in the artifact store")
		}
		if m.ConfigMap != nil {
			if err := firstErr(checkName("source.module.configMap.name", m.ConfigMap.Name), required("source.module.configMap.key", m.ConfigMap.Key)); err != nil {
				return err
			}
		}
		if m.Digest != "" {
			if err := CheckDigest("source.module.digest", m.Digest); err != nil {
				return err
			}
		}
	case s.Code == "":
		return fmt.Errorf("source.code is required")
	case !languages[s.Language]:
		return fmt.Errorf("source.language %q is not one of c, assemblyscript, wat, rust", s.Language)
	case len(s.Code) > MaxSourceBytes:
		return fmt.Errorf("source.code is %d bytes; the limit is %d", len(s.Code), MaxSourceBytes)
	}
	return checkBoards(d.Boards)
}

func checkBoards(bs []string) error {
	if len(bs) == 0 {
		return fmt.Errorf("boards must name at least one board")
	}
	for i, b := range bs {
		if b == "" {
			return fmt.Errorf("boards[%d] is empty", i)
		}
	}
	return nil
}

// Validate checks the built module's report.
func (d *ModuleBuiltData) Validate() error {
	return firstErr(d.Application.Validate(), CheckDigest("digest", d.Digest), positive("size", d.Size), checkBoards(d.Boards))
}

// Validate checks the build failure.
func (d *BuildFailedData) Validate() error {
	return firstErr(d.Application.Validate(), required("reason", d.Reason), required("message", d.Message))
}

// Validate checks the validated module's report.
func (d *ModuleValidatedData) Validate() error {
	return firstErr(d.Application.Validate(), CheckDigest("digest", d.Digest), positive("size", d.Size))
}

// Validate checks the rejection.
func (d *ModuleRejectedData) Validate() error {
	if err := firstErr(d.Application.Validate(), CheckDigest("digest", d.Digest)); err != nil {
		return err
	}
	if len(d.Report.Reasons) == 0 {
		return fmt.Errorf("report.reasons must say why the module was rejected")
	}
	return nil
}

// Validate checks the rollout request.
func (d *RolloutRequestedData) Validate() error {
	if err := firstErr(d.Application.Validate(), CheckDigest("digest", d.Digest), nonNegative("size", d.Size)); err != nil {
		return err
	}
	if d.Step < 0 {
		return fmt.Errorf("step must not be negative")
	}
	if d.Paced && (len(d.Devices) == 0 || d.Remove) {
		return fmt.Errorf("paced names the devices to start: it needs devices and excludes remove")
	}
	for i, dev := range d.Devices {
		if err := checkName(fmt.Sprintf("devices[%d]", i), dev); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the deployment request.
func (d *DeploymentRequestedData) Validate() error {
	if err := firstErr(d.Application.Validate(), checkRef("gateway", d.Gateway), CheckDigest("digest", d.Digest)); err != nil {
		return err
	}
	if err := nonNegative("size", d.Size); err != nil {
		return err
	}
	if len(d.Devices) == 0 {
		return fmt.Errorf("devices must name at least one device")
	}
	for i, dev := range d.Devices {
		if err := checkName(fmt.Sprintf("devices[%d]", i), dev); err != nil {
			return err
		}
	}
	if n := len(d.Signature); n != 0 && n != protocol.SignatureSize {
		return fmt.Errorf("signature is %d bytes; an ed25519 signature is %d", n, protocol.SignatureSize)
	}
	if n := len(d.Manifest); n > protocol.MaxManifestSize {
		return fmt.Errorf("manifest is %d bytes; the limit is %d", n, protocol.MaxManifestSize)
	}
	if (len(d.Signature) == 0) != (len(d.Manifest) == 0) {
		return fmt.Errorf("a signature and a manifest go together")
	}
	return nil
}

// Validate checks the dispatch summary.
func (d *DeploymentDispatchedData) Validate() error {
	return firstErr(d.Application.Validate(), CheckDigest("digest", d.Digest))
}

// Validate checks the deployment result.
func (d *DeploymentResultData) Validate() error {
	if err := firstErr(d.Application.Validate(), checkName("device", d.Device), CheckDigest("digest", d.Digest), checkState("state", d.State)); err != nil {
		return err
	}
	switch d.Failure {
	case "", v1.FailureTransfer, v1.FailureStart, v1.FailureTrap:
		return nil
	}
	return fmt.Errorf("failure %q is not transfer, start or trap", d.Failure)
}

// Validate checks the summary: counts that add up, known failure types, bounded lists.
func (d *DeploymentSummaryData) Validate() error {
	if err := firstErr(d.Application.Validate(), checkRef("gateway", d.Gateway), CheckDigest("digest", d.Digest),
		nonNegative("seq", d.Seq), nonNegative("devices", int64(d.Devices)), nonNegative("succeeded", int64(d.Succeeded)),
		nonNegative("failed", int64(d.Failed))); err != nil {
		return err
	}
	if d.Epoch.IsZero() {
		return fmt.Errorf("epoch is required")
	}
	if d.Succeeded+d.Failed > d.Devices {
		return fmt.Errorf("succeeded (%d) and failed (%d) add up to more than devices (%d)", d.Succeeded, d.Failed, d.Devices)
	}
	byType := 0
	for t, n := range d.FailuresByType {
		if err := checkFailure("failuresByType", t); err != nil {
			return err
		}
		if n < 0 {
			return fmt.Errorf("failuresByType[%s] must not be negative, not %d", t, n)
		}
		byType += n
	}
	if byType > d.Failed {
		return fmt.Errorf("failuresByType adds up to %d, more than failed (%d)", byType, d.Failed)
	}
	if len(d.FirstFailures) > MaxSummaryFailures || len(d.FirstFailures) > d.Failed {
		return fmt.Errorf("firstFailures has %d entries; at most %d and at most failed (%d)", len(d.FirstFailures), MaxSummaryFailures, d.Failed)
	}
	for i, f := range d.FirstFailures {
		if err := firstErr(checkName(fmt.Sprintf("firstFailures[%d].device", i), f.Device), checkFailure(fmt.Sprintf("firstFailures[%d].failure", i), f.Failure)); err != nil {
			return err
		}
		if len(f.Message) > 1024 {
			return fmt.Errorf("firstFailures[%d].message is %d bytes; the limit is 1024", i, len(f.Message))
		}
	}
	return nil
}

// checkFailure checks a failure type a gateway reports.
func checkFailure(field string, f v1.FailureType) error {
	switch f {
	case v1.FailureTransfer, v1.FailureStart, v1.FailureTrap:
		return nil
	}
	return fmt.Errorf("%s: failure %q is not transfer, start or trap", field, f)
}

// Validate checks the connection report.
func (d *DeviceConnectedData) Validate() error {
	if err := firstErr(checkNamespace("namespace", d.Namespace), checkName("device", d.Device), checkRef("gateway", d.Gateway)); err != nil {
		return err
	}
	for i, a := range d.Applications {
		if err := firstErr(checkName(fmt.Sprintf("applications[%d].name", i), a.Name), checkState(fmt.Sprintf("applications[%d].state", i), a.State)); err != nil {
			return err
		}
		if a.Digest != "" {
			if err := CheckDigest(fmt.Sprintf("applications[%d].digest", i), a.Digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkState checks that s is one of the platform's application states.
func checkState(field string, s v1.AppState) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

// Validate checks the disconnection report.
func (d *DeviceDisconnectedData) Validate() error {
	return firstErr(checkNamespace("namespace", d.Namespace), checkName("device", d.Device), checkRef("gateway", d.Gateway), required("reason", d.Reason))
}

// Validate checks the liveness report.
func (d *DeviceSeenData) Validate() error {
	if err := checkRef("gateway", d.Gateway); err != nil {
		return err
	}
	for i, dev := range d.Devices {
		if err := checkRef(fmt.Sprintf("devices[%d]", i), dev); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the telemetry record.
func (d *DeviceTelemetryData) Validate() error {
	if err := firstErr(checkNamespace("namespace", d.Namespace), checkName("device", d.Device), required("application", d.Application), required("topic", d.Topic)); err != nil {
		return err
	}
	if len(d.Topic) > 64 {
		return fmt.Errorf("topic is %d bytes; the limit is 64", len(d.Topic))
	}
	if len(d.Payload) > 512 {
		return fmt.Errorf("payload is %d bytes; the limit is 512", len(d.Payload))
	}
	return nil
}

func positive(field string, v int64) error {
	if v <= 0 {
		return fmt.Errorf("%s must be positive, not %d", field, v)
	}
	return nil
}

func nonNegative(field string, v int64) error {
	if v < 0 {
		return fmt.Errorf("%s must not be negative, not %d", field, v)
	}
	return nil
}

// checkRef checks a required reference; decoding already checked its form.
func checkRef(field string, r v1.Ref) error {
	if r.IsZero() {
		return fmt.Errorf("%s is required", field)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}
