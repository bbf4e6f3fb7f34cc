package receiver

import (
	"slices"
	"time"

	"github.com/wasmbed/wasmbed/api/digest"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
)

// What gateways report about a device (its sessions, its applications' states) reaches
// the receiver out of order: each event type has its own Trigger, and a gateway may
// notice a device's departure after the device reconnected elsewhere. The helpers here
// apply a report only if it is newer than what the Device's status holds.

// sessionOrder places a reported session against the device's latest known one.
type sessionOrder int

const (
	olderSession sessionOrder = iota
	sameSession
	newerSession // or the first one, or a report that does not name its session
)

// maxClockSkew is how far apart two gateways' clocks may be. Sessions on one gateway
// are ordered by when they opened; a session on another gateway must be this much
// older (to be ignored when it starts) or newer (to count when it ends), because a
// device that moves gateways mostly moves forward.
const maxClockSkew = 2 * time.Second

// sessionOf compares session id of gateway gw, opened at since, with the latest
// session in st, for a report of its start or (ending) of its end.
func sessionOf(st *v1.DeviceStatus, gw, id string, since time.Time, ending bool) sessionOrder {
	cur := st.Session
	switch {
	case id == "" || since.IsZero():
		return newerSession // a gateway that does not name sessions: arrival order
	case cur == nil && ending && st.Gateway != "" && gw != st.Gateway:
		return olderSession // the end of a session elsewhere than the device's gateway
	case cur == nil:
		return newerSession
	case gw == st.Gateway && id == cur.ID:
		return sameSession
	case gw == st.Gateway && since.Before(cur.Since.Time):
		return olderSession
	case gw != st.Gateway && !ending && since.Before(cur.Since.Add(-maxClockSkew)):
		return olderSession
	case gw != st.Gateway && ending && !since.After(cur.Since.Add(maxClockSkew)):
		return olderSession
	}
	return newerSession
}

// setSession records the session a report is about as the device's latest; a report
// that names none (an older gateway) leaves no session to compare with.
func setSession(st *v1.DeviceStatus, gw, id string, since time.Time) {
	if id == "" || since.IsZero() {
		st.Session = nil
		return
	}
	st.Gateway = gw
	st.Session = &v1.DeviceSession{ID: id, Since: metav1.NewMicroTime(since)}
}

// removedFor is how long a Removed entry stays in a Device's status: long enough for
// any report sent before the removal to have arrived.
const removedFor = 5 * time.Minute

// maxDeviceApps bounds status.applications.
const maxDeviceApps = 32

// report is one gateway report about one application on a device.
type report struct {
	digest digest.Digest
	state  v1.AppState
	msg    string
	// gen and uid are the Application generation and object the report is about, 0 and
	// "" when unknown (a Hello): then those already recorded for the same digest are
	// kept.
	gen int64
	uid string
	// at is the event's time; zero when the event had none.
	at time.Time
	// failure is where a failed deployment failed, as the gateway saw it.
	failure v1.FailureType
}

// setApp records a report in a device's status, unless the entry there is newer:
// reports reach the receiver out of order (each event type has its own Trigger). A
// Removed report leaves a Removed entry for removedFor, so that a late Failed or
// Running sent before the removal cannot bring the app back; now prunes older ones.
func setApp(dev *v1.Device, name string, rep report, now time.Time) {
	apps := dev.Status.Applications[:0]
	for _, a := range dev.Status.Applications {
		if a.State == v1.AppRemoved && a.Name != name && (a.ReportedAt == nil || now.Sub(a.ReportedAt.Time) > removedFor) {
			continue
		}
		apps = append(apps, a)
	}
	dev.Status.Applications = apps
	i := slices.IndexFunc(apps, func(a v1.DeviceApplication) bool { return a.Name == name })
	if i >= 0 && !rep.at.IsZero() && apps[i].ReportedAt != nil && rep.at.Before(apps[i].ReportedAt.Time) {
		return // a later report is already applied
	}
	st := rep.state
	if st == v1.AppRemoved && rep.at.IsZero() {
		if i >= 0 {
			dev.Status.Applications = slices.Delete(apps, i, i+1)
		}
		return
	}
	msg := rep.msg
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	entry := v1.DeviceApplication{Name: name, Digest: rep.digest, State: st, Message: msg, Generation: rep.gen, UID: rep.uid, Failure: rep.failure}
	if !rep.at.IsZero() {
		at := metav1.NewMicroTime(rep.at)
		entry.ReportedAt = &at
	}
	if i >= 0 {
		if old := apps[i]; rep.gen == 0 && old.Digest == rep.digest {
			entry.Generation, entry.UID = old.Generation, old.UID
		}
		apps[i] = entry
		return
	}
	if len(apps) >= maxDeviceApps {
		// Make room by dropping the oldest Removed entry, if there is one.
		oldest := -1
		for j, a := range apps {
			if a.State == v1.AppRemoved && (oldest < 0 || a.ReportedAt.Before(apps[oldest].ReportedAt)) {
				oldest = j
			}
		}
		if oldest < 0 {
			return
		}
		apps = slices.Delete(apps, oldest, oldest+1)
	}
	dev.Status.Applications = append(apps, entry)
}
