package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// maxCachedModuleBytes bounds the module bytes (and their encoded chunks) kept in memory.
const maxCachedModuleBytes = 256 << 20

// module is a module's bytes and digest.
type module struct {
	digest [sha256.Size]byte
	name   string // "sha256:<hex>"
	data   []byte
}

// chunkFrames are the encoded Chunk frames of one module for one app name and chunk
// size: identical for every device, so they are built once and shared read-only.
type chunkFrames struct {
	mod       *module
	chunkSize uint32
	frames    [][]byte
}

type framesKey struct {
	digest    string
	app       string
	chunkSize uint32
}

// moduleCache fetches modules from the artifact store once and keeps them with their
// encoded chunks, within maxCachedModuleBytes.
type moduleCache struct {
	store artifacts.Store

	mu     sync.Mutex
	mods   map[string]*module
	frames map[framesKey]*chunkFrames
	bytes  int
}

func newModuleCache(store artifacts.Store) *moduleCache {
	return &moduleCache{store: store, mods: map[string]*module{}, frames: map[framesKey]*chunkFrames{}}
}

// errNoModule is wrapped when the store does not have a module.
var errNoModule = errors.New("module not in the artifact store")

// get returns the module with digest ("sha256:<hex>"), reading the store if needed.
func (c *moduleCache) get(ctx context.Context, digest string) (*module, error) {
	c.mu.Lock()
	m := c.mods[digest]
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	if c.store == nil {
		return nil, fmt.Errorf("get module %s: %w (no store configured)", digest, errNoModule)
	}
	data, err := c.store.Get(ctx, digest)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotFound) {
			return nil, fmt.Errorf("get module %s: %w", digest, errNoModule)
		}
		return nil, fmt.Errorf("get module %s: %w", digest, err)
	}
	return c.add(digest, data)
}

// add verifies data against digest and caches it.
func (c *moduleCache) add(digest string, data []byte) (*module, error) {
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("module %s: content does not match its digest", digest)
	}
	if len(data) == 0 || len(data) > protocol.MaxModuleSize {
		return nil, fmt.Errorf("module %s: size %d out of range", digest, len(data))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.mods[digest]; m != nil {
		return m, nil
	}
	m := &module{digest: sum, name: digest, data: data}
	c.evictLocked(len(data))
	c.mods[digest] = m
	c.bytes += len(data)
	return m, nil
}

// evictLocked drops cached entries until n more bytes fit. Transfers in progress keep
// their own references, so eviction never breaks them.
func (c *moduleCache) evictLocked(n int) {
	for k, f := range c.frames {
		if c.bytes+n <= maxCachedModuleBytes {
			return
		}
		delete(c.frames, k)
		c.bytes -= len(f.mod.data)
	}
	for k, m := range c.mods {
		if c.bytes+n <= maxCachedModuleBytes {
			return
		}
		delete(c.mods, k)
		c.bytes -= len(m.data)
	}
}

// chunks returns the encoded chunks of m for app with chunkSize.
func (c *moduleCache) chunks(m *module, app string, chunkSize uint32) (*chunkFrames, error) {
	key := framesKey{m.name, app, chunkSize}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.frames[key]; f != nil {
		return f, nil
	}
	f := &chunkFrames{mod: m, chunkSize: chunkSize}
	for off := 0; off < len(m.data); off += int(chunkSize) {
		end := min(off+int(chunkSize), len(m.data))
		frame, err := protocol.EncodeFrame(&protocol.Chunk{App: app, Offset: uint32(off), Data: m.data[off:end]})
		if err != nil {
			return nil, fmt.Errorf("encode chunk: %w", err)
		}
		f.frames = append(f.frames, frame)
	}
	c.evictLocked(len(m.data))
	c.frames[key] = f
	c.bytes += len(m.data)
	return f, nil
}
