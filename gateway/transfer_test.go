package gateway_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/api/protocol"
	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/internal/devicesim"
	wasmfix "github.com/wasmbed/wasmbed/testdata/wasm"
)

func failedWith(substr string) func(cloudevents.Event) bool {
	return func(e cloudevents.Event) bool {
		d, err := events.DecodeAs[*events.DeploymentResultData](e, events.DeploymentFailed)
		return err == nil && strings.Contains(d.Message, substr)
	}
}

// failedAs matches a deployment.failed whose message contains substr and whose failure
// type is failure.
func failedAs(substr string, failure v1.FailureType) func(cloudevents.Event) bool {
	return func(e cloudevents.Event) bool {
		d, err := events.DecodeAs[*events.DeploymentResultData](e, events.DeploymentFailed)
		return err == nil && strings.Contains(d.Message, substr) && d.Failure == failure
	}
}

func TestStoreAndForward(t *testing.T) {
	h := newHarness(t)
	digest := h.put(wasmfix.Blink)
	app := events.AppRef{Namespace: "default", Name: "blink", Generation: 3}
	if code := h.deploy(app, digest, len(wasmfix.Blink), []string{"late-0"}); code != 202 {
		t.Fatalf("deploy: %d", code)
	}
	if h.events.count(events.DeploymentSucceeded, nil) != 0 {
		t.Fatal("success before the device connected")
	}
	f := h.fleet("late-", 1)
	eventually(t, 10*time.Second, func() bool {
		return h.events.count(events.DeploymentSucceeded, succeeded("Running")) == 1
	}, "delivered on connect")
	if st, _ := f.Devices()[0].AppState("blink"); st != protocol.StateRunning {
		t.Fatalf("device state %v", st)
	}
	// On reconnect nothing is sent again: the device reports the app Running.
	f.Devices()[0].Disconnect()
	eventually(t, 10*time.Second, func() bool { return f.Devices()[0].Sessions() == 2 }, "reconnect")
	time.Sleep(100 * time.Millisecond) // let a wrong redelivery show up, if any
	if n := h.counter(gateway.MetricTransferBytes, ""); n != float64(len(wasmfix.Blink)) {
		t.Fatalf("transfer bytes %v after reconnect, want one transfer of %d", n, len(wasmfix.Blink))
	}
}

func TestTenancy(t *testing.T) {
	h := newHarness(t)
	digest := h.put(wasmfix.Blink)
	teamA := h.fleet("dev-", 1, nsOpt("team-a"))
	teamB := h.fleet("dev-", 1, nsOpt("team-b"))
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 2 }, "both sessions")
	h.deploy(events.AppRef{Namespace: "team-a", Name: "blink", Generation: 1}, digest, len(wasmfix.Blink), []string{"dev-0"})
	eventually(t, 10*time.Second, func() bool { st, _ := teamA.Devices()[0].AppState("blink"); return st == protocol.StateRunning }, "team-a runs it")
	if st, _ := teamB.Devices()[0].AppState("blink"); st != 0 {
		t.Fatalf("team-b/dev-0 got team-a's application (%v)", st)
	}
	// The device is Running before its AppStatus reaches the gateway.
	eventually(t, 10*time.Second, func() bool { return len(h.events.all(events.DeploymentSucceeded)) > 0 }, "the result")
	time.Sleep(100 * time.Millisecond) // let a second result show up, if any
	ev := h.events.all(events.DeploymentSucceeded)
	if len(ev) != 1 || ev[0].Subject() != "team-a/blink" {
		t.Fatalf("events %v", ev)
	}
}

func TestRestartKeepsDesiredState(t *testing.T) {
	dir := t.TempDir()
	desired, err := gateway.NewDirDesired(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c gateway.Config) gateway.Config { return c.WithDesired(desired) })
	digest := h.put(wasmfix.Blink)
	h.deploy(events.AppRef{Namespace: "default", Name: "blink", Generation: 2}, digest, len(wasmfix.Blink), []string{"after-0"})
	h.stop()

	// A new gateway process: fresh memory, same state directory and artifact store.
	reloaded, err := gateway.NewDirDesired(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := reloaded.For(context.Background(), id("default", "after-0"))
	if len(got) != 1 || got[0].Digest != digest || got[0].Generation != 2 {
		t.Fatalf("reloaded desired state %+v", got)
	}
	h.reg = prometheus.NewRegistry()
	h.cfg = h.cfg.WithDesired(reloaded).WithRegisterer(h.reg)
	h.start()
	f := h.fleet("after-", 1)
	eventually(t, 10*time.Second, func() bool { st, _ := f.Devices()[0].AppState("blink"); return st == protocol.StateRunning }, "delivered after restart")
}

// TestResumePartialTransfer cuts a transfer after one chunk; the next session resumes
// at the device's offset instead of starting over.
func TestResumePartialTransfer(t *testing.T) {
	h := newHarness(t)
	module := padModule(wasmfix.Blink, 3000) // 12 chunks of 256 bytes at max_frame 512
	digest := h.put(module)
	sum := sha256.Sum256(module)
	dev := id("default", "resume-0")
	d := h.connect(dev, 512)
	h.deploy(events.AppRef{Namespace: "default", Name: "big", Generation: 1}, digest, len(module), []string{dev.Name})
	dep := d.expect(protocol.TypeDeploy).(*protocol.Deploy)
	if dep.ChunkSize != 256 || dep.Size != 3000 {
		t.Fatalf("deploy %+v", dep)
	}
	d.send(&protocol.DeployAck{App: "big", Digest: dep.Digest, Offset: 0, Window: 2})
	held := append([]byte(nil), d.expect(protocol.TypeChunk).(*protocol.Chunk).Data...)
	d.send(&protocol.ChunkAck{App: "big", Next: 256})
	d.conn.Close()
	eventually(t, 5*time.Second, func() bool { return !h.srv.Connected(dev) }, "session closed")

	d = h.connect(dev, 512, protocol.AppInfo{Name: "big", Digest: sum[:], State: protocol.StateReceiving})
	dep = d.expect(protocol.TypeDeploy).(*protocol.Deploy)
	d.send(&protocol.DeployAck{App: "big", Digest: dep.Digest, Offset: 256, Window: 4})
	for uint32(len(held)) < dep.Size {
		c := d.expect(protocol.TypeChunk).(*protocol.Chunk)
		if c.Offset != uint32(len(held)) {
			t.Fatalf("chunk at %d, want %d", c.Offset, len(held))
		}
		held = append(held, c.Data...)
		d.send(&protocol.ChunkAck{App: "big", Next: uint32(len(held))})
	}
	if sha256.Sum256(held) != sum {
		t.Fatal("reassembled module differs")
	}
	d.send(&protocol.AppStatus{App: "big", Digest: sum[:], State: protocol.StateReceived})
	d.expect(protocol.TypeStart)
	d.send(&protocol.AppStatus{App: "big", Digest: sum[:], State: protocol.StateRunning})
	eventually(t, 5*time.Second, func() bool { return h.events.count(events.DeploymentSucceeded, succeeded("Running")) == 1 }, "success")
	if n := h.counter(gateway.MetricTransferBytes, ""); n != 3000 {
		t.Fatalf("transfer bytes %v, want 3000 (256 + the resumed 2744)", n)
	}
}

// TestResumeWithSimDevice cuts a sim device's link mid-transfer; the device keeps the
// partial module and the next session resumes where it stopped.
func TestResumeWithSimDevice(t *testing.T) {
	h := newHarness(t)
	module := padModule(wasmfix.Blink, 40000)
	digest := h.put(module)
	f := h.fleet("simres-", 1, windowOpt(1), func(c *devicesim.Config) { c.CutTransferAt = 20000 })
	dev := f.Devices()[0]
	eventually(t, 10*time.Second, dev.Connected, "connected")
	h.deploy(events.AppRef{Namespace: "default", Name: "big", Generation: 1}, digest, len(module), []string{"simres-0"})
	eventually(t, 10*time.Second, func() bool { st, _ := dev.AppState("big"); return st == protocol.StateRunning }, "running after a cut transfer")
	if dev.Sessions() != 2 {
		t.Fatalf("%d sessions, want 2", dev.Sessions())
	}
	// Bytes held but not acknowledged before the cut are not counted twice, nor is
	// anything sent again from offset 0.
	if n := h.counter(gateway.MetricTransferBytes, ""); n > float64(len(module)) || n < float64(len(module)-256) {
		t.Fatalf("transfer bytes %v for a %d-byte module: the transfer started over", n, len(module))
	}
}

func TestBadOffsetRestartsTransfer(t *testing.T) {
	h := newHarness(t)
	module := padModule(wasmfix.Blink, 1000)
	digest := h.put(module)
	d := h.connect(id("default", "off-0"), 512)
	h.deploy(events.AppRef{Namespace: "default", Name: "app", Generation: 1}, digest, len(module), []string{"off-0"})
	dep := d.expect(protocol.TypeDeploy).(*protocol.Deploy)
	d.send(&protocol.DeployAck{App: "app", Digest: dep.Digest, Offset: 0, Window: 1})
	d.expect(protocol.TypeChunk)
	e := protocol.NewError(protocol.CodeBadOffset, protocol.TypeChunk, "expected offset 0")
	e.App = "app"
	d.send(e)
	d.expect(protocol.TypeDeploy) // the gateway restarts with Deploy
	// An acknowledgement beyond what was sent is refused and restarts too.
	d.send(&protocol.DeployAck{App: "app", Digest: dep.Digest, Offset: 0, Window: 1})
	d.expect(protocol.TypeChunk)
	d.send(&protocol.ChunkAck{App: "app", Next: 768})
	if e := d.expect(protocol.TypeError).(*protocol.Error); e.Code != protocol.CodeInvalidValue {
		t.Fatalf("got %v", e)
	}
	d.expect(protocol.TypeDeploy)
	if h.counter(gateway.MetricProtocolErrors, "code=bad_offset") != 1 {
		t.Fatal("bad_offset not counted")
	}
	if !h.srv.Connected(id("default", "off-0")) {
		t.Fatal("session closed")
	}
}

func TestDigestMismatchFailsDeployment(t *testing.T) {
	h := newHarness(t)
	digest := h.put(wasmfix.Blink)
	d := h.connect(id("default", "dig-0"), 2048)
	h.deploy(events.AppRef{Namespace: "default", Name: "blink", Generation: 1}, digest, len(wasmfix.Blink), []string{"dig-0"})
	dep := d.expect(protocol.TypeDeploy).(*protocol.Deploy)
	d.send(&protocol.DeployAck{App: "blink", Digest: dep.Digest, Offset: 0, Window: 4})
	d.expect(protocol.TypeChunk)
	e := protocol.NewError(protocol.CodeDigestMismatch, protocol.TypeChunk, "sha256 differs")
	e.App = "blink"
	d.send(e)
	d.send(&protocol.AppStatus{App: "blink", Digest: dep.Digest, State: protocol.StateFailed, Error: "digest mismatch"})
	eventually(t, 5*time.Second, func() bool {
		return h.events.count(events.DeploymentFailed, failedAs("digest_mismatch", v1.FailureTransfer)) == 1
	}, "deployment.failed")
	if h.counter(gateway.MetricDeployments, "result=failed") != 1 || !hasLog(h, "deployment failed", "digest_mismatch") {
		t.Fatal("failure not counted or logged")
	}
	if !h.srv.Connected(id("default", "dig-0")) {
		t.Fatal("a digest mismatch closed the session")
	}
}

// TestFailureTypes: deployment.failed says where a deployment failed, which rollout
// policies (abort criteria, retries) act on: a module that cannot start, whose setup
// traps, or that traps once running.
func TestFailureTypes(t *testing.T) {
	cases := []struct {
		name   string
		module []byte
		want   v1.FailureType
	}{
		{"setup traps", wasmfix.TrapSetup, v1.FailureStart},
		{"missing import", wasmfix.BadImport, v1.FailureStart},
		{"loop traps after Running", wasmfix.OOBLog, v1.FailureTrap},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			digest := h.put(tc.module)
			prefix := fmt.Sprintf("ft%d-", i)
			h.fleet(prefix, 1)
			eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 1 }, "session")
			h.deploy(events.AppRef{Namespace: "default", Name: "trap", Generation: 1}, digest, len(tc.module), []string{prefix + "0"})
			var got *events.DeploymentResultData
			eventually(t, 10*time.Second, func() bool {
				return h.events.count(events.DeploymentFailed, func(e cloudevents.Event) bool {
					d, _ := events.DecodeAs[*events.DeploymentResultData](e, events.DeploymentFailed)
					if d != nil && d.State == "Failed" && d.Message != "" {
						got = d
						return true
					}
					return false
				}) == 1
			}, "deployment.failed with the trap")
			if got.Failure != tc.want {
				t.Errorf("failure %q (%s), want %q", got.Failure, got.Message, tc.want)
			}
		})
	}
}

// A device that reset because of an app's fault lists it Failed in Hello, which has no
// error, then says why in an AppStatus: that reaches the platform once, though the
// state did not change; the same report again does not.
func TestFailureAfterResetReported(t *testing.T) {
	h := newHarness(t)
	digest := h.put(wasmfix.Blink)
	h.deploy(events.AppRef{Namespace: "default", Name: "blink", Generation: 1}, digest, len(wasmfix.Blink), []string{"flt-0"})
	failed := protocol.AppInfo{Name: "blink", Digest: digest.Bytes(), State: protocol.StateFailed}
	d := h.connect(id("default", "flt-0"), 2048, failed)
	const why = "fault: MemManage pc=0x000008a6 addr=0x2007d800 cfsr=0x00000082"
	status := &protocol.AppStatus{App: "blink", Digest: digest.Bytes(), State: protocol.StateFailed, Error: why, Traps: 1}
	d.send(status)
	eventually(t, 5*time.Second, func() bool { return h.events.count(events.DeploymentFailed, failedAs(why, v1.FailureTrap)) == 1 },
		"deployment.failed with the fault")
	d.send(status)
	d.send(&protocol.Heartbeat{Seq: 1})
	d.expect(protocol.TypeHeartbeatAck) // the second report was handled by now
	if n := h.events.count(events.DeploymentFailed, nil); n != 1 {
		t.Fatalf("%d deployment.failed events, want the fault reported once", n)
	}
}

// TestFaultedModuleNotRedelivered: a board without an app store forgets the module that
// reset it, and reports the fault after the reboot. The gateway then does not deliver
// that module to it again on its own (it would fault again, for ever); a new
// deployment request does.
func TestFaultedModuleNotRedelivered(t *testing.T) {
	h := newHarness(t)
	digest := h.put(wasmfix.Blink)
	app := events.AppRef{Namespace: "default", Name: "blink", Generation: 1}
	h.deploy(app, digest, len(wasmfix.Blink), []string{"flt-1"})

	d := h.connect(id("default", "flt-1"), 2048)
	if m := d.expect(protocol.TypeDeploy).(*protocol.Deploy); m.App != "blink" {
		t.Fatalf("Deploy of %q", m.App)
	}
	// The board took it, ran it and reset; after the reboot it holds nothing (no store)
	// and says why, as the firmware does from its crash record.
	d.conn.Close()
	d = h.connect(id("default", "flt-1"), 2048)
	d.send(&protocol.AppStatus{App: "blink", Digest: digest.Bytes(), State: protocol.StateFailed,
		Error: "fault: HardFault pc=0x000008a6 cfsr=0x00000000", Traps: 1})
	// The reconnect's reconciliation may have sent a Deploy before the report arrived;
	// once the report is in (the heartbeat after it is answered), the module is marked.
	d.send(&protocol.Heartbeat{Seq: 7})
	for {
		m, err := d.read()
		if err != nil {
			t.Fatalf("waiting for the heartbeat's answer: %v", err)
		}
		if a, ok := m.(*protocol.HeartbeatAck); ok && a.Seq == 7 {
			break
		}
	}
	d.conn.Close()
	d = h.connect(id("default", "flt-1"), 2048)
	d.send(&protocol.Heartbeat{Seq: 1})
	if m, err := d.read(); err != nil || m.Type() != protocol.TypeHeartbeatAck {
		t.Fatalf("after the fault, the reconnect got %v (%v), want only a HeartbeatAck", m, err)
	}
	eventually(t, 5*time.Second, func() bool { return hasLog(h, "not delivered again: the module reset this device") },
		"the skipped delivery is logged")

	// A new request is a new decision: delivered.
	app.Generation = 2
	if code := h.deploy(app, digest, len(wasmfix.Blink), []string{"flt-1"}); code != 202 {
		t.Fatalf("deploy answered %d", code)
	}
	d.expect(protocol.TypeDeploy)
}

func TestRemove(t *testing.T) {
	h := newHarness(t)
	digest := h.put(wasmfix.Blink)
	f := h.fleet("rm-", 1)
	eventually(t, 10*time.Second, func() bool { return h.srv.Sessions() == 1 }, "session")
	app := events.AppRef{Namespace: "default", Name: "blink", Generation: 1}
	h.deploy(app, digest, len(wasmfix.Blink), []string{"rm-0"})
	eventually(t, 10*time.Second, func() bool { st, _ := f.Devices()[0].AppState("blink"); return st == protocol.StateRunning }, "running")
	app.Generation = 2
	h.deploy(app, digest, 0, []string{"rm-0"}, func(d *events.DeploymentRequestedData) { d.Remove = true })
	eventually(t, 10*time.Second, func() bool { return h.events.count(events.DeploymentSucceeded, succeeded("Removed")) == 1 }, "removed")
	if st, _ := f.Devices()[0].AppState("blink"); st != 0 {
		t.Fatalf("still on the device: %v", st)
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	h := newHarness(t, func(c gateway.Config) gateway.Config {
		return c.WithHeartbeat(100*time.Millisecond, 400*time.Millisecond)
	})
	f := h.fleet("alive-", 1, heartbeatOpt(50*time.Millisecond))
	eventually(t, 10*time.Second, f.Devices()[0].Connected, "alive")
	d := h.connect(id("default", "silent-0"), 2048)
	if e := d.expectClosed(); e == nil || e.Code != protocol.CodeHeartbeatTimeout {
		t.Fatalf("got %v, want heartbeat_timeout", e)
	}
	eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricCloses, "reason=heartbeat-timeout") == 1 }, "counted")
	// The close is counted before it is logged: wait for the line too.
	eventually(t, 5*time.Second, func() bool { return hasLog(h, "device=default/silent-0", "reason=heartbeat-timeout") }, "logged")
	if f.Devices()[0].Sessions() != 1 || !f.Devices()[0].Connected() {
		t.Fatal("the device that sends heartbeats lost its session")
	}
}

func TestSlowConsumer(t *testing.T) {
	h := newHarness(t, func(c gateway.Config) gateway.Config {
		return c.WithWriteQueue(8).WithWriteTimeout(300 * time.Millisecond)
	})
	f := h.fleet("fine-", 1)
	eventually(t, 10*time.Second, f.Devices()[0].Connected, "bystander")
	dev := id("default", "slow-0")
	small := func(network, address string, c syscall.RawConn) error {
		var serr error
		_ = c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return serr
	}
	d, err := h.dialRaw(deviceCert(t, h.ca, dev), small)
	if err != nil {
		t.Fatal(err)
	}
	d.send(helloFor(dev.String(), 2048))
	d.expect(protocol.TypeWelcome)
	// Flood heartbeats without ever reading the acknowledgements.
	var batch []byte
	for i := range 2000 {
		fr, _ := protocol.EncodeFrame(&protocol.Heartbeat{Seq: uint32(i)})
		batch = append(batch, fr...)
	}
	go func() {
		for {
			_ = d.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := d.conn.Write(batch); err != nil {
				return
			}
		}
	}()
	eventually(t, 20*time.Second, func() bool { return h.counter(gateway.MetricCloses, "reason=slow-consumer") == 1 }, "slow consumer closed")
	if !hasLog(h, "device=default/slow-0", "reason=slow-consumer") {
		t.Fatal("not logged")
	}
	if f.Devices()[0].Sessions() != 1 || !f.Devices()[0].Connected() {
		t.Fatal("the bystander lost its session")
	}
	var _ net.Conn
}

func TestSecondSessionReplacesFirst(t *testing.T) {
	h := newHarness(t)
	dev := id("default", "twin-0")
	first := h.connect(dev, 2048)
	second := h.connect(dev, 2048)
	if e := first.expectClosed(); e == nil || e.Code != protocol.CodeGoingAway {
		t.Fatalf("first session got %v, want going_away", e)
	}
	eventually(t, 5*time.Second, func() bool { return h.counter(gateway.MetricCloses, "reason=replaced") == 1 }, "replaced counted")
	second.send(&protocol.Heartbeat{Seq: 1})
	second.expect(protocol.TypeHeartbeatAck)
	if h.srv.Sessions() != 1 {
		t.Fatalf("%d sessions", h.srv.Sessions())
	}
	// The events name each session and when it opened, so that the operator can tell
	// the first session's end, reported after the second began, from the second's. (The
	// first session's device.connected may be emitted after its end: the operator orders
	// them by the session's opening time.)
	eventually(t, 5*time.Second, func() bool {
		return h.events.count(events.DeviceConnected, nil) == 2 && h.events.count(events.DeviceDisconnected, nil) == 1
	}, "two device.connected and one device.disconnected")
	ups := map[string]*events.DeviceConnectedData{}
	for _, e := range h.events.all(events.DeviceConnected) {
		d, err := events.DecodeAs[*events.DeviceConnectedData](e, events.DeviceConnected)
		if err != nil {
			t.Fatal(err)
		}
		ups[d.Session] = d
	}
	down, err := events.DecodeAs[*events.DeviceDisconnectedData](h.events.all(events.DeviceDisconnected)[0], events.DeviceDisconnected)
	if err != nil {
		t.Fatal(err)
	}
	closed := ups[down.Session]
	delete(ups, down.Session)
	if closed == nil || !down.Since.Equal(closed.Since) || len(ups) != 1 {
		t.Fatalf("the closed session %s (opened %v) is not one of two distinct connected sessions", down.Session, down.Since)
	}
	for _, live := range ups {
		if !live.Since.After(closed.Since) {
			t.Errorf("the live session opened %v, not after the replaced one (%v)", live.Since, closed.Since)
		}
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	h := newHarness(t)
	d := h.connect(id("default", "bye-0"), 2048)
	h.stop()
	if e := d.expectClosed(); e == nil || e.Code != protocol.CodeGoingAway {
		t.Fatalf("got %v, want going_away", e)
	}
	if h.counter(gateway.MetricCloses, "reason=going-away") != 1 {
		t.Fatal("not counted")
	}
}
