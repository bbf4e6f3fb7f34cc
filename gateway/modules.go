package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/wasmbed/wasmbed/api/digest"

	"github.com/wasmbed/wasmbed/api/protocol"
	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// maxCachedModuleBytes bounds the module bytes (and their encoded chunks) kept in memory.
const maxCachedModuleBytes = 256 << 20

// module is a module's bytes and digest.
type module struct {
	digest [sha256.Size]byte
	name   digest.Digest
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
	digest    digest.Digest
	app       string
	chunkSize uint32
}

// moduleCache fetches modules from the artifact store once and keeps them with their
// encoded chunks, within maxCachedModuleBytes.
type moduleCache struct {
	store artifacts.Store

	mu     sync.Mutex
	mods   map[digest.Digest]*module
	frames map[framesKey]*chunkFrames
	bytes  int
}

func newModuleCache(store artifacts.Store) *moduleCache {
	return &moduleCache{store: store, mods: map[digest.Digest]*module{}, frames: map[framesKey]*chunkFrames{}}
}

// errNoModule is wrapped when the store does not have a module.
var errNoModule = errors.New("module not in the artifact store")

// get returns the module with digest d, reading the store if needed.
func (c *moduleCache) get(ctx context.Context, d digest.Digest) (*module, error) {
	c.mu.Lock()
	m := c.mods[d]
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	if c.store == nil {
		return nil, fmt.Errorf("get module %s: %w (no store configured)", d, errNoModule)
	}
	data, err := c.store.Get(ctx, d)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotFound) {
			return nil, fmt.Errorf("get module %s: %w", d, errNoModule)
		}
		return nil, fmt.Errorf("get module %s: %w", d, err)
	}
	return c.add(d, data)
}

// add verifies data against digest d and caches it.
func (c *moduleCache) add(d digest.Digest, data []byte) (*module, error) {
	if err := d.Verify(data); err != nil {
		return nil, fmt.Errorf("module %s: %w", d, err)
	}
	if len(data) == 0 || len(data) > protocol.MaxModuleSize {
		return nil, fmt.Errorf("module %s: size %d out of range", d, len(data))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.mods[d]; m != nil {
		return m, nil
	}
	m := &module{digest: [sha256.Size]byte(d.Bytes()), name: d, data: data}
	c.evictLocked(len(data))
	c.mods[d] = m
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
