package gateway

import (
	"strings"
	"sync"

	"github.com/wasmbed/wasmbed/api/digest"
	"github.com/wasmbed/wasmbed/internal/pki"
)

// Device faults: a module that reset its device (a fault or the watchdog, reported
// after the reboot as a Failed AppStatus, docs/protocol.md section 6) is not delivered
// to that device again on its own. A board with an app store keeps such an app Failed;
// one without forgets it at the reset, and the gateway's reconciliation would deliver
// and start it again, into the same fault, for ever. Only a new deployment request for
// the app clears the mark. The marks live as long as the gateway process.

// deviceFault reports whether an AppStatus error says the app reset the device.
func deviceFault(reason string) bool {
	return strings.HasPrefix(reason, "fault: ") || strings.HasPrefix(reason, "watchdog reset")
}

// faultMarks remembers, per device and app, the module that reset the device.
type faultMarks struct {
	m sync.Map // faultKey -> digest.Digest
}

type faultKey struct {
	dev pki.Identity
	app string
}

func (f *faultMarks) mark(dev pki.Identity, app string, d digest.Digest) {
	f.m.Store(faultKey{dev, app}, d)
}

func (f *faultMarks) clear(dev pki.Identity, app string) { f.m.Delete(faultKey{dev, app}) }

// faulted reports whether d reset dev when it ran as app.
func (f *faultMarks) faulted(dev pki.Identity, app string, d digest.Digest) bool {
	v, ok := f.m.Load(faultKey{dev, app})
	return ok && v.(digest.Digest) == d
}
