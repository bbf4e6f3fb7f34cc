package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// ErrNotAllowed is wrapped by a Registry's Check when a device may not connect.
var ErrNotAllowed = errors.New("device not allowed")

// Registry decides which devices may hold a session, and tells the gateway when a
// device stops being allowed (disabled, deleted, its key revoked) so that its live
// session closes.
type Registry interface {
	// Check returns nil when the device id, presenting cert (its verified client
	// certificate), may connect, an error wrapping ErrNotAllowed when it may not, and
	// another error when the registry cannot tell; the gateway refuses the device
	// then too (registry-unavailable).
	Check(ctx context.Context, id pki.Identity, cert *x509.Certificate) error
	// Watch calls revoked for every device that stops being allowed, until ctx is
	// done; it returns nil then.
	Watch(ctx context.Context, revoked func(pki.Identity)) error
}

// AllowList is a Registry holding a fixed set of devices, optionally read from a file
// with one "<namespace>/<name>" per line ("#" starts a comment). Removing a device
// from the list closes its session.
type AllowList struct {
	path string

	mu   sync.Mutex
	ids  map[pki.Identity]bool
	subs map[int]func(pki.Identity)
	next int
}

// NewAllowList returns an allow-list of ids.
func NewAllowList(ids ...pki.Identity) *AllowList {
	a := &AllowList{ids: map[pki.Identity]bool{}, subs: map[int]func(pki.Identity){}}
	for _, id := range ids {
		a.ids[id] = true
	}
	return a
}

// LoadAllowList reads an allow-list file; Reload reads it again.
func LoadAllowList(path string) (*AllowList, error) {
	a := NewAllowList()
	a.path = path
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// ParseAllowList parses the allow-list file format.
func ParseAllowList(data []byte) ([]pki.Identity, error) {
	var ids []pki.Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ns, name, ok := strings.Cut(line, "/")
		if !ok {
			return nil, fmt.Errorf("line %d: want <namespace>/<name>, got %q", n, line)
		}
		id, err := pki.NewIdentity(ns, name)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		ids = append(ids, id)
	}
	return ids, sc.Err()
}

// Reload reads the file again and revokes every device no longer listed.
func (a *AllowList) Reload() error {
	if a.path == "" {
		return errors.New("reload allow-list: no file")
	}
	data, err := os.ReadFile(a.path)
	if err != nil {
		return fmt.Errorf("read allow-list: %w", err)
	}
	ids, err := ParseAllowList(data)
	if err != nil {
		return fmt.Errorf("parse allow-list %s: %w", a.path, err)
	}
	a.Set(ids...)
	return nil
}

// Set replaces the list and revokes every device no longer listed.
func (a *AllowList) Set(ids ...pki.Identity) {
	next := make(map[pki.Identity]bool, len(ids))
	for _, id := range ids {
		next[id] = true
	}
	a.mu.Lock()
	var gone []pki.Identity
	for id := range a.ids {
		if !next[id] {
			gone = append(gone, id)
		}
	}
	a.ids = next
	subs := a.subscribers()
	a.mu.Unlock()
	notify(subs, gone)
}

// Add allows more devices.
func (a *AllowList) Add(ids ...pki.Identity) {
	a.mu.Lock()
	for _, id := range ids {
		a.ids[id] = true
	}
	a.mu.Unlock()
}

// Remove stops allowing devices and closes their sessions.
func (a *AllowList) Remove(ids ...pki.Identity) {
	a.mu.Lock()
	for _, id := range ids {
		delete(a.ids, id)
	}
	subs := a.subscribers()
	a.mu.Unlock()
	notify(subs, ids)
}

// Check allows the listed devices, with any certificate the CA signed.
func (a *AllowList) Check(_ context.Context, id pki.Identity, _ *x509.Certificate) error {
	a.mu.Lock()
	ok := a.ids[id]
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s is not in the allow-list", ErrNotAllowed, id)
	}
	return nil
}

// Watch reports removed devices until ctx is done.
func (a *AllowList) Watch(ctx context.Context, revoked func(pki.Identity)) error {
	a.mu.Lock()
	k := a.next
	a.next++
	a.subs[k] = revoked
	a.mu.Unlock()
	<-ctx.Done()
	a.mu.Lock()
	delete(a.subs, k)
	a.mu.Unlock()
	return nil
}

func (a *AllowList) subscribers() []func(pki.Identity) {
	subs := make([]func(pki.Identity), 0, len(a.subs))
	for _, f := range a.subs {
		subs = append(subs, f)
	}
	return subs
}

func notify(subs []func(pki.Identity), ids []pki.Identity) {
	for _, f := range subs {
		for _, id := range ids {
			f(id)
		}
	}
}
