package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"time"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
)

// maxRestarts bounds how often one transfer restarts with Deploy (bad offsets, bad
// acknowledgements) before it fails.
const maxRestarts = 3

// phase is where a delivery is (docs/protocol.md §6).
type phase uint8

const (
	phaseDeploy  phase = iota + 1 // Deploy sent, waiting for DeployAck
	phaseSending                  // Chunks in flight
	phaseVerify                   // every byte acknowledged, waiting for AppStatus Received
	phaseStart                    // Start sent, waiting for Running
	phaseStop                     // device busy: Stop sent, Deploy again once Stopped
	phaseRemove                   // Remove sent, waiting for Removed
)

// transfer is one delivery in progress to one device. It exists only while a delivery
// is in flight; nothing of it survives the session (the device's DeployAck says where
// to resume).
type transfer struct {
	app      DesiredApp
	digest   []byte
	chunks   *chunkFrames
	phase    phase
	acked    uint32
	sent     uint32
	window   uint32
	started  time.Time
	progress time.Time
	restarts int
	received bool
	lastErr  string
}

func (t *transfer) size() uint32 { return uint32(len(t.chunks.mod.data)) }

// state is the deployment state reported when t fails now.
func (t *transfer) state() v1.AppState {
	if t.phase <= phaseVerify || t.phase == phaseStop {
		return v1.AppTransferring
	}
	return v1.AppFailed
}

// reconcile compares the apps the device listed in Hello with its desired state and
// delivers, starts or removes what differs.
func (ss *session) reconcile() {
	// A context of its own rather than a child of the session's: a child would make
	// the session context allocate a done channel and a children map that every idle
	// session then keeps. apply checks whether the session closed meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desired, err := ss.srv.desired.For(ctx, ss.id)
	if err != nil {
		ss.logger().Error("read desired state", "err", err)
		return
	}
	for _, d := range desired {
		ss.apply(ctx, d, false)
	}
}

// apply moves the device towards d. requested is true for a fresh deployment request:
// then an app already in the desired state is reported again, and a Failed app is
// started again.
func (ss *session) apply(ctx context.Context, d DesiredApp, requested bool) {
	if d.Namespace != ss.id.Namespace {
		return // tenancy: a device only ever gets its own namespace's applications
	}
	now := time.Now()
	if d.Remove {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if ss.closed || !ss.stillDesiredLocked(ctx, d) {
			return
		}
		if ss.appLocked(d.Name) == nil {
			if requested {
				ss.resultLocked(d, true, v1.AppRemoved, "not on the device", "")
			}
			return
		}
		t := &transfer{app: d, phase: phaseRemove, started: now, progress: now}
		ss.setTransferLocked(t)
		ss.sendMessageLocked(&protocol.Remove{App: d.Name})
		return
	}
	if requested {
		ss.srv.faults.clear(ss.id, d.Name) // a new decision: deliver even a module that faulted
	} else if ss.srv.faults.faulted(ss.id, d.Name, d.Digest) {
		ss.logger().Warn("not delivered again: the module reset this device", "app", d.Subject(), "digest", d.Digest)
		return
	}
	// A superseded request does nothing, not even report a failure (checked again below,
	// under the same lock as the delivery, after the module is at hand).
	ss.mu.Lock()
	current := !ss.closed && ss.stillDesiredLocked(ctx, d)
	ss.mu.Unlock()
	if !current {
		return
	}
	sum := d.Digest.Bytes()
	if len(sum) != protocol.DigestSize {
		ss.result(d, false, v1.AppTransferring, "bad digest "+d.Digest.String(), v1.FailureTransfer)
		return
	}
	if ss.maxModule != 0 && d.Size > int64(ss.maxModule) {
		ss.result(d, false, v1.AppTransferring, "too_large: module exceeds the device's max_module", v1.FailureTransfer)
		return
	}
	mod, err := ss.srv.modules.get(ctx, d.Digest)
	if err != nil {
		ss.logger().Error("module unavailable", "app", d.Subject(), "digest", d.Digest, "err", err)
		ss.result(d, false, v1.AppTransferring, "module unavailable", v1.FailureTransfer)
		return
	}
	chunks, err := ss.srv.modules.chunks(mod, d.Name, protocol.ChunkSizeFor(ss.maxFrame))
	if err != nil {
		ss.logger().Error("encode module", "app", d.Subject(), "err", err)
		ss.result(d, false, v1.AppTransferring, "module cannot be sent", v1.FailureTransfer)
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || !ss.stillDesiredLocked(ctx, d) {
		return
	}
	if t := ss.transfers[d.Name]; t != nil && t.phase != phaseRemove && t.app.same(d) {
		return // already on its way
	}
	t := &transfer{app: d, digest: sum, chunks: chunks, started: now, progress: now}
	if a := ss.appLocked(d.Name); a != nil && bytes.Equal(a.Digest, sum) {
		switch a.State {
		case protocol.StateRunning, protocol.StateExited:
			if requested && a.State == protocol.StateRunning {
				// A fresh request may carry a new configuration, which only the device
				// can compare: a Deploy of the module it holds is acknowledged at once,
				// and restarts the app when the configuration changed.
				ss.setTransferLocked(t)
				ss.sendDeployLocked(t)
				return
			}
			delete(ss.transfers, d.Name)
			if requested {
				ss.resultLocked(d, true, platformState(a.State), "", "")
			} else {
				// Found running on a reconnect: counted, though not reported again.
				ss.srv.sum.record(d, ss.id.Name, true, platformState(a.State), "", "")
			}
			return
		case protocol.StateFailed:
			if !requested {
				return // do not restart a failing app on every reconnect
			}
			fallthrough
		case protocol.StateReceived, protocol.StateStopped:
			t.phase, t.received = phaseStart, true
			ss.setTransferLocked(t)
			ss.sendMessageLocked(&protocol.Start{App: d.Name})
			return
		}
	}
	ss.setTransferLocked(t)
	ss.sendDeployLocked(t)
}

// stillDesiredLocked reports whether d is still what the device should have. Requests
// for one Application may be handled in parallel and a newer one may have been stored
// since d was read; checking under the session lock, after the store was written,
// makes the last request stored the last one applied.
func (ss *session) stillDesiredLocked(ctx context.Context, d DesiredApp) bool {
	cur, ok, err := ss.srv.desired.Current(ctx, ss.id, d.Name)
	if err != nil {
		ss.logger().Error("read desired state", "app", d.Subject(), "err", err)
		return false // the next request or reconnect applies it
	}
	if !ok || !cur.same(d) {
		ss.logger().Debug("superseded request skipped", "app", d.Subject(), "digest", d.Digest, "generation", d.Generation)
		return false
	}
	return true
}

func (ss *session) setTransferLocked(t *transfer) {
	if ss.transfers == nil {
		ss.transfers = map[string]*transfer{}
	}
	ss.transfers[t.app.Name] = t
}

func (ss *session) sendDeployLocked(t *transfer) {
	t.phase = phaseDeploy
	t.progress = time.Now()
	ss.sendMessageLocked(&protocol.Deploy{
		App: t.app.Name, Digest: t.digest, Size: t.size(), ChunkSize: t.chunks.chunkSize,
		Config: t.app.Config, Signature: t.app.Signature, Manifest: t.app.Manifest,
	})
}

// pumpLocked sends chunks from t.sent while the device's window allows.
func (ss *session) pumpLocked(t *transfer) {
	size, cs := t.size(), t.chunks.chunkSize
	for t.sent < size && t.sent-t.acked < t.window*cs {
		ss.sendLocked(t.chunks.frames[t.sent/cs])
		t.sent = min(t.sent+cs, size)
	}
}

func (ss *session) onDeployAck(m *protocol.DeployAck) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	t := ss.transfers[m.App]
	if t == nil || t.phase != phaseDeploy || !bytes.Equal(t.digest, m.Digest) {
		ss.logger().Debug("stale deploy ack", "app", m.App)
		return
	}
	size, cs := t.size(), t.chunks.chunkSize
	if m.Offset > size || (m.Offset != size && m.Offset%cs != 0) {
		ss.sendErrorLocked(protocol.CodeInvalidValue, protocol.TypeDeployAck, m.App, "offset is not a chunk boundary")
		ss.failLocked(t, "device resumed at a bad offset")
		return
	}
	t.acked, t.sent, t.window, t.progress = m.Offset, m.Offset, m.Window, time.Now()
	if m.Offset == size {
		t.phase = phaseVerify // the device reports its state next
		return
	}
	t.phase = phaseSending
	ss.pumpLocked(t)
}

func (ss *session) onChunkAck(m *protocol.ChunkAck) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	t := ss.transfers[m.App]
	if t == nil || t.phase != phaseSending {
		return // late acknowledgement of a cancelled or finished transfer
	}
	size, cs := t.size(), t.chunks.chunkSize
	if m.Next < t.acked || m.Next > t.sent || (m.Next != size && m.Next%cs != 0) {
		ss.sendErrorLocked(protocol.CodeInvalidValue, protocol.TypeChunkAck, m.App, "acknowledges bytes not sent")
		ss.restartLocked(t, "bad chunk acknowledgement")
		return
	}
	ss.srv.m.transferBytes.Add(float64(m.Next - t.acked))
	t.acked, t.progress = m.Next, time.Now()
	if t.acked == size {
		t.phase = phaseVerify
		return
	}
	ss.pumpLocked(t)
}

func (ss *session) onAppStatus(m *protocol.AppStatus) {
	ss.mu.Lock()
	prev, same := ss.setAppLocked(m.App, m.Digest, m.State)
	newFailure := ss.failureLocked(m)
	if m.State == protocol.StateFailed && deviceFault(m.Error) {
		ss.srv.faults.mark(ss.id, m.App, wireDigest(m.Digest))
	}
	t := ss.transfers[m.App]
	switch {
	case t != nil && t.phase == phaseRemove:
		if m.State == protocol.StateRemoved {
			ss.finishLocked(t, true, v1.AppRemoved, "")
		}
		ss.mu.Unlock()
		return
	case t != nil && bytes.Equal(t.digest, m.Digest):
		ss.progressLocked(t, m)
		ss.mu.Unlock()
		return
	case t != nil && t.phase == phaseStop && m.State == protocol.StateStopped:
		ss.sendDeployLocked(t)
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	// No delivery in flight: report a desired app that later trapped, faulted or exited.
	changed := prev != m.State || !same || newFailure
	if !changed || (m.State != protocol.StateFailed && m.State != protocol.StateExited) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	desired, err := ss.srv.desired.For(ctx, ss.id)
	cancel()
	if err != nil {
		return
	}
	for _, d := range desired {
		if d.Name == m.App && !d.Remove && d.Digest == wireDigest(m.Digest) {
			// No delivery in flight: the app had started, so a failure now is a trap.
			var failure v1.FailureType
			if m.State == protocol.StateFailed {
				failure = v1.FailureTrap
			}
			ss.result(d, m.State == protocol.StateExited, platformState(m.State), m.Error, failure)
		}
	}
}

// failureLocked records the error of a Failed AppStatus and reports whether this
// session had not heard it yet (the first one after a Hello that listed the app Failed).
func (ss *session) failureLocked(m *protocol.AppStatus) bool {
	if m.State != protocol.StateFailed {
		delete(ss.failures, m.App)
		return false
	}
	if old, ok := ss.failures[m.App]; ok && old == m.Error {
		return false
	}
	if ss.failures == nil {
		ss.failures = map[string]string{}
	}
	ss.failures[m.App] = m.Error
	return true
}

// progressLocked advances t on an AppStatus for its digest.
func (ss *session) progressLocked(t *transfer, m *protocol.AppStatus) {
	switch m.State {
	case protocol.StateReceived:
		if t.phase == phaseStart || t.phase == phaseStop {
			return
		}
		if !t.received {
			t.received = true
			ss.srv.m.transferSeconds.Observe(time.Since(t.started).Seconds())
		}
		t.phase, t.progress = phaseStart, time.Now()
		ss.sendMessageLocked(&protocol.Start{App: t.app.Name})
	case protocol.StateRunning, protocol.StateExited:
		ss.finishLocked(t, true, platformState(m.State), "")
	case protocol.StateFailed:
		msg := m.Error
		if t.lastErr != "" {
			msg = strings.TrimSpace(t.lastErr + " " + msg)
		}
		ss.finishLocked(t, false, v1.AppFailed, msg)
	case protocol.StateStopped:
		if t.phase == phaseStop {
			ss.sendDeployLocked(t)
		}
	}
}

// onDeviceError handles an Error about an application.
func (ss *session) onDeviceError(m *protocol.Error) {
	if m.App == "" {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	t := ss.transfers[m.App]
	if t == nil {
		return
	}
	why := m.Code.String()
	if m.Message != "" {
		why += ": " + m.Message
	}
	switch m.Code {
	case protocol.CodeBadOffset:
		ss.restartLocked(t, why)
	case protocol.CodeBadSignature:
		if m.Related == protocol.TypeDeploy {
			// Refused before any byte moved (the manifest): nothing else follows.
			ss.failLocked(t, why)
			return
		}
		t.lastErr = why // AppStatus Failed follows
		t.progress = time.Now()
	case protocol.CodeDigestMismatch:
		t.lastErr = why // AppStatus Failed follows
		t.progress = time.Now()
	case protocol.CodeBusy:
		if t.phase == phaseDeploy && t.restarts < maxRestarts {
			t.restarts++
			t.phase = phaseStop
			ss.sendMessageLocked(&protocol.Stop{App: t.app.Name})
			return
		}
		ss.failLocked(t, why)
	case protocol.CodeNotFound:
		if t.phase == phaseRemove {
			ss.finishLocked(t, true, v1.AppRemoved, "not on the device")
			return
		}
		ss.failLocked(t, why)
	default:
		ss.failLocked(t, why)
	}
}

func (ss *session) restartLocked(t *transfer, why string) {
	t.restarts++
	if t.restarts > maxRestarts {
		ss.failLocked(t, why)
		return
	}
	ss.logger().Info("transfer restarts", "app", t.app.Name, "why", why, "restart", t.restarts)
	ss.sendDeployLocked(t)
}

// checkStale fails deliveries that made no progress for the transfer timeout.
func (ss *session) checkStale() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := time.Now()
	for _, t := range ss.transfers {
		if now.Sub(t.progress) > ss.srv.cfg.transferTimeout {
			ss.failLocked(t, "timed out")
		}
	}
}

func (ss *session) failLocked(t *transfer, why string) {
	ss.finishLocked(t, false, t.state(), why)
}

// failure is where a delivery that ends in state failed: before the device held the
// module verified (transfer: it is still Transferring, or a digest or signature error
// preceded the Failed), or once it held it (start: the Start, or the restart of a module
// the device already held with a new configuration, failed).
func (t *transfer) failure(state v1.AppState) v1.FailureType {
	if state == v1.AppTransferring || t.lastErr != "" || t.phase < phaseVerify || t.phase == phaseStop {
		return v1.FailureTransfer
	}
	return v1.FailureStart
}

func (ss *session) finishLocked(t *transfer, ok bool, state v1.AppState, msg string) {
	if ss.transfers[t.app.Name] == t {
		delete(ss.transfers, t.app.Name)
	}
	var failure v1.FailureType
	if !ok {
		failure = t.failure(state)
	}
	ss.resultLocked(t.app, ok, state, msg, failure)
}

func (ss *session) sendErrorLocked(code protocol.ErrorCode, related protocol.MessageType, app, msg string) {
	e := protocol.NewError(code, related, msg)
	e.App = app
	ss.srv.m.protocolErrors.WithLabelValues("out", code.String()).Inc()
	ss.sendMessageLocked(e)
}

func (ss *session) result(d DesiredApp, ok bool, state v1.AppState, msg string, failure v1.FailureType) {
	ss.mu.Lock()
	ss.resultLocked(d, ok, state, msg, failure)
	ss.mu.Unlock()
}

// resultLocked reports a deployment result; the sink does not block. failure says where
// a failed deployment failed (docs/events.md), "" on success.
func (ss *session) resultLocked(d DesiredApp, ok bool, state v1.AppState, msg string, failure v1.FailureType) {
	t, result := events.DeploymentSucceeded, "succeeded"
	if !ok {
		t, result = events.DeploymentFailed, "failed"
	}
	ss.srv.m.deployments.WithLabelValues(result, string(state)).Inc()
	ss.srv.sum.record(d, ss.id.Name, ok, state, failure, msg)
	if ok {
		ss.log(slog.LevelInfo, "deployment succeeded", "app", d.Subject(), "digest", d.Digest, "state", state)
	} else {
		ss.log(slog.LevelWarn, "deployment failed", "app", d.Subject(), "digest", d.Digest, "state", state, "message", msg)
	}
	ss.srv.emitTraced(ss.id, d.TraceParent, t, d.Subject(), &events.DeploymentResultData{
		Application: events.AppRef{Namespace: d.Namespace, Name: d.Name, Generation: d.Generation, UID: d.UID},
		Device:      ss.id.Name, Gateway: ss.srv.ref, Digest: d.Digest, State: state, Message: msg, Failure: failure,
	})
}

// platformState is a device's application state in the platform's vocabulary. The
// decoder admits only states the protocol defines; were another to slip through, the
// event built from "" fails validation and is logged, rather than read as Failed.
func platformState(s protocol.AppState) v1.AppState {
	st, err := events.DeviceAppState(s)
	if err != nil {
		return ""
	}
	return st
}
