package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/wasmbed/wasmbed/api/digest"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// DesiredApp is what one device should run for one Application: a module (by digest)
// with its configuration, or the removal of the application.
type DesiredApp struct {
	// Namespace and Name identify the Application; Name is also the app name on the
	// device, and Namespace is always the device's own.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Generation is the Application generation the request belongs to.
	Generation int64 `json:"generation"`
	// Digest names the module; Size is its length in bytes.
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// Config is passed to the application. Manifest is the signed deployment manifest
	// (docs/protocol.md) and Signature its ed25519 signature; both empty when unsigned.
	Config    map[string]string `json:"config,omitempty"`
	Manifest  []byte            `json:"manifest,omitempty"`
	Signature []byte            `json:"signature,omitempty"`
	// Remove asks for the application to be removed from the device.
	Remove bool `json:"remove,omitempty"`
	// UID is the Application's metadata.uid, empty when the request did not say.
	UID string `json:"uid,omitempty"`
	// Rollback marks the redeployment of the previous module after a failed rollout.
	Rollback bool `json:"rollback,omitempty"`
	// TraceParent is the W3C trace context of the request (its handling span): the
	// device's result, reported later, continues that trace.
	TraceParent string `json:"traceparent,omitempty"`
}

// Subject returns "<namespace>/<name>", the Application's name in events.
func (d DesiredApp) Subject() string { return d.Namespace + "/" + d.Name }

func (d DesiredApp) same(o DesiredApp) bool {
	return d.Namespace == o.Namespace && d.Name == o.Name && d.Generation == o.Generation &&
		d.Digest == o.Digest && d.Size == o.Size && d.Remove == o.Remove &&
		d.UID == o.UID && d.Rollback == o.Rollback &&
		maps.Equal(d.Config, o.Config) && string(d.Signature) == string(o.Signature) &&
		string(d.Manifest) == string(o.Manifest)
}

// maxRetired bounds how many deleted objects of one Application name a record
// remembers.
const maxRetired = 8

// stale reports whether storing d for a device whose desired state is cur (nil: none)
// would undo a later decision. Requests can arrive out of order (a broker retries,
// dispatch runs requests in parallel), so:
//   - a deployment of an object whose removal was stored (a deleted Application) is
//     stale, unless the device has that object's own state;
//   - a removal never removes another live object of the same name;
//   - for one object, a lower generation is stale, so is a step request of the
//     generation a rollback was made for, and so is any deployment after its removal.
//
// Requests that do not say their object (no uid) are taken in arrival order.
func (r *appRecord) stale(d DesiredApp, cur *DesiredApp) bool {
	if d.UID == "" {
		return false
	}
	if !d.Remove && slices.Contains(r.Retired, d.UID) && (cur == nil || cur.UID != d.UID) {
		return true
	}
	if cur == nil || cur.UID == "" {
		return false
	}
	if d.UID != cur.UID {
		// Objects of one name exist one after the other: one that was removed is older.
		return d.Remove && !slices.Contains(r.Retired, cur.UID)
	}
	switch {
	case d.Generation != cur.Generation:
		return d.Generation < cur.Generation
	case cur.Remove:
		return !d.Remove
	case cur.Rollback:
		return !d.Rollback && !d.Remove
	}
	return false
}

// DesiredStore keeps the desired state of every device of a gateway, so that a device
// that is offline, or a gateway that restarts, loses nothing.
type DesiredStore interface {
	// Apply records that devices (names in app.Namespace) should have app, replacing
	// what they had for that Application unless app is older than that (see stale).
	// It returns once the state is durable.
	Apply(ctx context.Context, app DesiredApp, devices []string) error
	// For returns the desired applications of one device, sorted by name.
	For(ctx context.Context, id pki.Identity) ([]DesiredApp, error)
	// Current returns what one device should have for one Application, if anything.
	Current(ctx context.Context, id pki.Identity, app string) (DesiredApp, bool, error)
	// Variants returns the variants of one Application's desired state, each with the
	// devices that should have it.
	Variants(ctx context.Context, namespace, name string) ([]DesiredVariant, error)
}

// DesiredVariant is one variant of an Application's desired state and the devices that
// should have it, sorted by name.
type DesiredVariant struct {
	App     DesiredApp
	Devices []string
}

// appRecord is the desired state of one Application on this gateway's devices: the
// variants in flight (a rollout has two) and which device gets which.
type appRecord struct {
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Variants  []DesiredApp   `json:"variants"`
	Devices   map[string]int `json:"devices"`
	// Retired lists the uids of deleted objects of this name (their removal was
	// stored), newest last; their late requests are stale.
	Retired []string `json:"retired,omitempty"`
}

// applied returns a copy of r with devices set to app, except those for which app is
// stale, and unused variants dropped.
func (r *appRecord) applied(app DesiredApp, devices []string) *appRecord {
	n := &appRecord{Namespace: app.Namespace, Name: app.Name, Devices: make(map[string]int, len(devices))}
	if r != nil {
		n.Variants = slices.Clone(r.Variants)
		maps.Copy(n.Devices, r.Devices)
		n.Retired = slices.Clone(r.Retired)
	}
	idx := slices.IndexFunc(n.Variants, app.same)
	if idx < 0 {
		n.Variants = append(n.Variants, app)
		idx = len(n.Variants) - 1
	}
	for _, d := range devices {
		var cur *DesiredApp
		if i, ok := n.Devices[d]; ok {
			cur = &n.Variants[i]
		}
		if n.stale(app, cur) {
			continue
		}
		n.Devices[d] = idx
	}
	if app.Remove && app.UID != "" && !slices.Contains(n.Retired, app.UID) {
		n.Retired = append(n.Retired, app.UID)
		if len(n.Retired) > maxRetired {
			n.Retired = slices.Delete(n.Retired, 0, len(n.Retired)-maxRetired)
		}
	}
	// Drop variants no device uses, renumbering the rest.
	used := make([]bool, len(n.Variants))
	for _, i := range n.Devices {
		used[i] = true
	}
	remap := make([]int, len(n.Variants))
	var kept []DesiredApp
	for i, v := range n.Variants {
		if used[i] {
			remap[i] = len(kept)
			kept = append(kept, v)
		}
	}
	n.Variants = kept
	for d, i := range n.Devices {
		n.Devices[d] = remap[i]
	}
	return n
}

// MemoryDesired is a DesiredStore in memory, for tests and embedded use where
// durability does not matter.
type MemoryDesired struct {
	// wmu serialises writers across the (slow, for DirDesired) persist; mu guards
	// byNS only while a record is read or swapped, so readers (sessions, under their
	// own lock) never wait for a disk write.
	wmu     sync.Mutex
	mu      sync.RWMutex
	byNS    map[string]map[string]*appRecord
	persist func(*appRecord) error
}

// NewMemoryDesired returns an empty in-memory store.
func NewMemoryDesired() *MemoryDesired {
	return &MemoryDesired{byNS: map[string]map[string]*appRecord{}}
}

// Apply records the desired state.
func (m *MemoryDesired) Apply(ctx context.Context, app DesiredApp, devices []string) error {
	if err := checkPathName(app.Namespace); err != nil {
		return fmt.Errorf("apply desired state: namespace: %w", err)
	}
	if err := checkPathName(app.Name); err != nil {
		return fmt.Errorf("apply desired state: name: %w", err)
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	rec := m.byNS[app.Namespace][app.Name].applied(app, devices)
	m.mu.RUnlock()
	if m.persist != nil {
		if err := m.persist(rec); err != nil {
			return fmt.Errorf("apply desired state: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	apps := m.byNS[app.Namespace]
	if apps == nil {
		apps = map[string]*appRecord{}
		m.byNS[app.Namespace] = apps
	}
	apps[app.Name] = rec
	return nil
}

// For returns a device's desired applications.
func (m *MemoryDesired) For(_ context.Context, id pki.Identity) ([]DesiredApp, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []DesiredApp
	for _, rec := range m.byNS[id.Namespace] {
		if i, ok := rec.Devices[id.Name]; ok {
			out = append(out, rec.Variants[i])
		}
	}
	slices.SortFunc(out, func(a, b DesiredApp) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Current returns what one device should have for one Application.
func (m *MemoryDesired) Current(_ context.Context, id pki.Identity, app string) (DesiredApp, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	rec := m.byNS[id.Namespace][app]
	if rec == nil {
		return DesiredApp{}, false, nil
	}
	i, ok := rec.Devices[id.Name]
	if !ok {
		return DesiredApp{}, false, nil
	}
	return rec.Variants[i], true, nil
}

// Variants returns the variants of one Application with their devices.
func (m *MemoryDesired) Variants(_ context.Context, namespace, name string) ([]DesiredVariant, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	rec := m.byNS[namespace][name]
	if rec == nil {
		return nil, nil
	}
	out := make([]DesiredVariant, len(rec.Variants))
	for i, v := range rec.Variants {
		out[i].App = v
	}
	for dev, i := range rec.Devices {
		out[i].Devices = append(out[i].Devices, dev)
	}
	for i := range out {
		slices.Sort(out[i].Devices)
	}
	return out, nil
}

// DirDesired is a durable DesiredStore: one small JSON file per Application
// (<dir>/<namespace>/<name>.json), written atomically (temporary file, fsync, rename),
// and an index in memory loaded at start.
type DirDesired struct {
	*MemoryDesired
	dir string
}

// NewDirDesired opens (creating it if needed) a desired-state directory and loads it.
func NewDirDesired(dir string) (*DirDesired, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("desired state dir: %w", err)
	}
	d := &DirDesired{MemoryDesired: NewMemoryDesired(), dir: dir}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("desired state dir: %w", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("load desired state: %w", err)
		}
		var rec appRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("load desired state %s: %w", f, err)
		}
		if rec.Namespace == "" || rec.Name == "" {
			return nil, fmt.Errorf("load desired state %s: no namespace or name", f)
		}
		for dev, i := range rec.Devices {
			if i < 0 || i >= len(rec.Variants) {
				return nil, fmt.Errorf("load desired state %s: device %s has variant %d of %d", f, dev, i, len(rec.Variants))
			}
		}
		apps := d.byNS[rec.Namespace]
		if apps == nil {
			apps = map[string]*appRecord{}
			d.byNS[rec.Namespace] = apps
		}
		apps[rec.Name] = &rec
	}
	d.persist = d.write
	return d, nil
}

func (d *DirDesired) write(rec *appRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	nsDir := filepath.Join(d.dir, rec.Namespace)
	if err := os.MkdirAll(nsDir, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(nsDir, rec.Name+".json"), data)
}

// writeFileAtomic replaces path with data so that a crash leaves the old or the new
// content, never a mix.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	if dh, err := os.Open(dir); err == nil {
		_ = dh.Sync()
		dh.Close()
	}
	return nil
}

// checkPathName refuses names that could escape the store directory; Kubernetes
// names never contain these.
func checkPathName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `/\`) || strings.HasPrefix(s, ".") {
		return fmt.Errorf("bad name %q", s)
	}
	return nil
}
