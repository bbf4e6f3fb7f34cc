// Package function is the dispatch function: it turns a validated module (rollout step
// 0) or a rollout request (a later Canary step, the devices a rollout policy starts now,
// or a rollback to explicit devices) into
// one dev.wasmbed.deployment.requested event per gateway, sent to the broker, and
// replies with dev.wasmbed.deployment.dispatched.
//
// It keeps no state: the Application and its Devices are read from the Kubernetes API
// on every event, so any replica can serve any event.
package dispatch

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wasmbed/wasmbed/api/abi"
	"github.com/wasmbed/wasmbed/api/attestation"
	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/artifacts"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/events"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/rollout"
)

// Sender delivers events to the broker (K_SINK).
type Sender interface {
	Send(ctx context.Context, e cloudevents.Event) error
}

// Config configures the function.
type Config struct {
	// Reader reads Applications and Devices.
	Reader client.Reader
	// Sender sends deployment.requested events to the broker.
	Sender Sender
	// DefaultGateway ("<namespace>/<name>") serves devices that name no gateway and
	// have not connected yet. Empty leaves them unassigned.
	DefaultGateway string
	// Signer, when set, signs a deployment manifest for every module dispatched
	// (docs/protocol.md, "Deployment manifest"), which gateways and devices verify. It
	// needs Attestations and Validator: only a module the validator attested is signed.
	Signer *pki.SigningKey
	// Attestations holds the validator's signed attestations, and Validator is its
	// public key. When set, a module is dispatched only if an attestation signed by it
	// says the module passed validation for the ABI and every target device's board.
	Attestations artifacts.Attestations
	Validator    ed25519.PublicKey
	// Logger receives one line per dispatch.
	Logger *slog.Logger
}

// Function is the dispatch function.
type Function struct {
	cfg       Config
	defaultGW v1.Ref
}

// New returns the dispatch function.
func New(cfg Config) (*Function, error) {
	if cfg.Reader == nil || cfg.Sender == nil {
		return nil, errors.New("dispatch: a Kubernetes reader and an event sender are required")
	}
	if cfg.Signer != nil && (cfg.Attestations == nil || len(cfg.Validator) != ed25519.PublicKeySize) {
		return nil, errors.New("dispatch: a signer needs the validator's attestations and public key: only validated modules are signed")
	}
	if (cfg.Attestations == nil) != (len(cfg.Validator) == 0) {
		return nil, errors.New("dispatch: attestations and the validator's public key go together")
	}
	var def v1.Ref
	if cfg.DefaultGateway != "" {
		var err error
		if def, err = v1.ParseRef(cfg.DefaultGateway); err != nil {
			return nil, fmt.Errorf("dispatch: default gateway: %w", err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Function{cfg: cfg, defaultGW: def}, nil
}

// Handle dispatches one rollout step.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	p, err := events.Decode(e, events.ModuleValidated, events.RolloutRequested)
	if err != nil {
		return nil, err
	}
	var req events.RolloutRequestedData
	fromValidate := false
	switch d := p.(type) {
	case *events.ModuleValidatedData:
		req = events.RolloutRequestedData{Application: d.Application, Digest: d.Digest, Size: d.Size, Step: 0}
		fromValidate = true
	case *events.RolloutRequestedData:
		req = *d
	}
	ref := req.Application

	var app v1.Application
	err = f.cfg.Reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &app)
	if apierrors.IsNotFound(err) {
		return nil, eventserver.Permanent(fmt.Errorf("application %s not found", ref.Subject()))
	}
	if err != nil {
		return nil, fmt.Errorf("get application %s: %w", ref.Subject(), err)
	}
	if ref.Other(string(app.UID)) {
		// The Application was deleted and created again: this event is the old one's.
		f.cfg.Logger.Info("event for a deleted object ignored", "application", ref.Subject(), "event uid", ref.UID, "uid", app.UID)
		return nil, nil
	}
	ref.UID = string(app.UID) // gateways tell the objects of one name apart by it
	if app.Generation != ref.Generation && !req.Remove {
		// A newer generation supersedes this event; its own pipeline run dispatches.
		f.cfg.Logger.Info("stale event ignored", "application", ref.Subject(), "event generation", ref.Generation, "current", app.Generation)
		return nil, nil
	}

	if fromValidate && len(app.Spec.Steps) > 0 && e.Extensions()[events.ExtSteps] != events.StepsDone {
		// The module goes through the Application's own steps first; their result comes
		// back as module.validated with wasmbedsteps=done.
		return nil, nil
	}
	if fromValidate && rollout.Paced(app.Spec.Rollout) {
		// The rollout policy (rate, windows, schedule, approval...) decides when each
		// device starts: the operator asks for them by name.
		f.cfg.Logger.Info("step 0 left to the rollout policy", "application", ref.Subject())
		return nil, nil
	}
	targets, err := rollout.Targets(ctx, f.cfg.Reader, &app)
	var selErr *rollout.SelectorError
	if errors.As(err, &selErr) {
		return nil, eventserver.Permanent(fmt.Errorf("application %s: %w", ref.Subject(), err))
	}
	if err != nil {
		return nil, err
	}
	batch, err := batchFor(&app, targets, req)
	if err != nil {
		return nil, eventserver.Permanent(err)
	}

	byGateway := map[v1.Ref][]string{}
	var unassigned []string
	for _, d := range batch {
		gw := d.GatewayRef(f.defaultGW)
		if gw.IsZero() {
			unassigned = append(unassigned, d.Name)
			continue
		}
		byGateway[gw] = append(byGateway[gw], d.Name)
	}
	gateways := slices.SortedFunc(maps.Keys(byGateway), func(a, b v1.Ref) int { return strings.Compare(a.String(), b.String()) })

	if !req.Remove && f.cfg.Attestations != nil {
		if err := f.checkAttested(ctx, req.Digest, batch); err != nil {
			f.cfg.Logger.Warn("not dispatched: module not attested", "application", ref.Subject(), "digest", req.Digest, "err", err)
			return nil, err
		}
	}
	rollback := len(req.Devices) > 0 && !req.Remove && !req.Paced
	var manifest, signature []byte
	if f.cfg.Signer != nil && !req.Remove {
		if manifest, signature, err = f.sign(&app, req.Digest, rollback); err != nil {
			return nil, eventserver.Permanent(fmt.Errorf("sign the deployment of %s to %s: %w", req.Digest, ref.Subject(), err))
		}
	}
	out := &events.DeploymentDispatchedData{Application: ref, Digest: req.Digest, Step: req.Step, Remove: req.Remove, Targeted: len(targets), Unassigned: unassigned}
	for _, gw := range gateways {
		data := &events.DeploymentRequestedData{
			Application: ref, Gateway: gw, Digest: req.Digest, Size: req.Size,
			Config: app.Spec.Config, Devices: byGateway[gw], Remove: req.Remove, Manifest: manifest, Signature: signature,
			Rollback: rollback,
		}
		de, err := events.New(events.DeploymentRequested, events.SourceDispatch, ref.Subject(), data)
		if err != nil {
			return nil, fmt.Errorf("dispatch %s to %s: %w", ref.Subject(), gw, err)
		}
		de.SetExtension(events.ExtGateway, gw.Extension())
		if err := f.cfg.Sender.Send(ctx, de); err != nil {
			return nil, fmt.Errorf("dispatch %s to %s: %w", ref.Subject(), gw, err)
		}
		out.Batches = append(out.Batches, events.GatewayBatch{Gateway: gw, Devices: len(byGateway[gw])})
	}
	f.cfg.Logger.Info("dispatched", "application", ref.Subject(), "digest", req.Digest, "step", req.Step,
		"targeted", len(targets), "batch", len(batch), "gateways", len(gateways), "unassigned", len(unassigned))
	reply, err := events.New(events.DeploymentDispatched, events.SourceDispatch, ref.Subject(), out)
	if err != nil {
		return nil, err
	}
	return &reply, nil
}

// sign returns the signed deployment manifest of this module, with the Application's
// configuration, for the Application as it is now.
func (f *Function) sign(app *v1.Application, d digest.Digest, rollback bool) (manifest, signature []byte, err error) {
	version, err := ManifestVersion(app.CreationTimestamp.Time, app.Generation, rollback)
	if err != nil {
		return nil, nil, err
	}
	hash, err := protocol.ConfigHash(app.Spec.Config)
	if err != nil {
		return nil, nil, err
	}
	m := &protocol.Manifest{
		Type: protocol.ManifestType, Namespace: app.Namespace, App: app.Name, UID: string(app.UID),
		Generation: uint64(app.Generation), Version: version, Digest: d.Bytes(), ConfigHash: hash,
	}
	if manifest, err = protocol.EncodeManifest(m); err != nil {
		return nil, nil, err
	}
	if signature, err = f.cfg.Signer.Sign(manifest); err != nil {
		return nil, nil, err
	}
	return manifest, signature, nil
}

// Version layout: the Application's creation time in seconds, its generation, and one
// bit for a rollback. Versions so grow with every generation of one object, a rollback
// outranks the rollout of its own generation, and an Application deleted and created
// again under the same name starts above everything its predecessor signed.
const (
	versionGenerationBits = 30
	versionSecondsBits    = 64 - versionGenerationBits - 1
)

// ManifestVersion returns the version a deployment manifest carries: it only grows for
// one Application name, whichever dispatch replica signs, without any stored counter.
func ManifestVersion(created time.Time, generation int64, rollback bool) (uint64, error) {
	secs := created.Unix()
	if secs <= 0 || secs >= 1<<versionSecondsBits {
		return 0, fmt.Errorf("creation time %s is outside the manifest version's range", created.UTC().Format(time.RFC3339))
	}
	if generation <= 0 || generation >= 1<<versionGenerationBits {
		return 0, fmt.Errorf("generation %d is outside the manifest version's range 1..%d", generation, 1<<versionGenerationBits-1)
	}
	v := uint64(secs)<<(versionGenerationBits+1) | uint64(generation)<<1
	if rollback {
		v |= 1
	}
	return v, nil
}

func batchFor(app *v1.Application, targets []v1.Device, req events.RolloutRequestedData) ([]v1.Device, error) {
	if req.Remove && len(req.Devices) == 0 {
		return targets, nil
	}
	if len(req.Devices) > 0 {
		want := map[string]bool{}
		for _, n := range req.Devices {
			want[n] = true
		}
		var out []v1.Device
		for _, d := range targets {
			if want[d.Name] {
				out = append(out, d)
			}
		}
		return out, nil
	}
	n, err := rollout.StepSize(app.Spec.Rollout, req.Step, len(targets))
	if err != nil {
		return nil, fmt.Errorf("application %s/%s: %w", app.Namespace, app.Name, err)
	}
	return targets[:n], nil
}

// checkAttested returns nil when the validator's attestation says module d passed
// validation for this ABI and for the board of every device in batch.
func (f *Function) checkAttested(ctx context.Context, d digest.Digest, batch []v1.Device) error {
	env, err := f.cfg.Attestations.Attestation(ctx, d)
	if errors.Is(err, artifacts.ErrNotFound) {
		return eventserver.Permanent(fmt.Errorf("module %s has no validation attestation: it was never validated", d))
	}
	if err != nil {
		return fmt.Errorf("attestation of %s: %w", d, err)
	}
	v, err := attestation.Verify(env, f.cfg.Validator, d, abi.Version)
	if err != nil {
		return eventserver.Permanent(err)
	}
	var missing []string
	for _, dev := range batch {
		if !slices.Contains(v.Boards, dev.Spec.Board) && !slices.Contains(missing, dev.Spec.Board) {
			missing = append(missing, dev.Spec.Board)
		}
	}
	if len(missing) > 0 {
		return eventserver.Permanent(fmt.Errorf("module %s was validated for %v, not for %v", d, v.Boards, missing))
	}
	return nil
}
