package artifacts_test

import (
	"github.com/wasmbed/wasmbed/api/digest"

	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// wasm is the smallest valid module: magic and version.
var wasm = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

func TestDirPutGet(t *testing.T) {
	ctx := context.Background()
	s, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Put(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if d != digest.Of(wasm) || !strings.HasPrefix(string(d), "sha256:") || len(d) != 71 {
		t.Fatalf("digest = %q", d)
	}
	again, err := s.Put(ctx, wasm)
	if err != nil || again != d {
		t.Fatalf("second put = %q, %v", again, err)
	}
	got, err := s.Get(ctx, d)
	if err != nil || string(got) != string(wasm) {
		t.Fatalf("get = %x, %v", got, err)
	}
}

func TestDirRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := artifacts.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Put(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the stored file behind the store's back.
	p := filepath.Join(dir, "sha256", strings.TrimPrefix(string(d), "sha256:"))
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		run    func() error
		want   string
		isNotF bool
	}{
		{"empty", func() error { _, err := s.Put(ctx, nil); return err }, "empty module", false},
		{"too big", func() error { _, err := s.Put(ctx, make([]byte, artifacts.MaxModuleBytes+1)); return err }, "limit", false},
		{"bad digest", func() error { _, err := s.Get(ctx, "md5:abc"); return err }, "not sha256", false},
		{"unknown", func() error { _, err := s.Get(ctx, digest.Of([]byte("x"))); return err }, "not found", true},
		{"corrupt", func() error { _, err := s.Get(ctx, d); return err }, "corrupt", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if errors.Is(err, artifacts.ErrNotFound) != tc.isNotF {
				t.Errorf("errors.Is(ErrNotFound) = %v", !tc.isNotF)
			}
		})
	}
}

func TestDirConcurrentPuts(t *testing.T) {
	s, err := artifacts.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Put(context.Background(), wasm); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
