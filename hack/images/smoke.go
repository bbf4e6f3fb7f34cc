package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// smokeSources are what the builder image's toolchains compile in the smoke test.
var smokeSources = map[string]string{
	"a.c":   "int loop(void) { return 500; }\n",
	"a.wat": "(module (func (export \"loop\") (result i32) i32.const 500))\n",
	"a.rs":  "#![no_std]\n#[panic_handler]\nfn p(_: &core::panic::PanicInfo) -> ! { loop {} }\n#[no_mangle]\npub extern \"C\" fn r#loop() -> i32 { 500 }\n",
	"a.ts":  "export function loop(): i32 { return 500; }\n",
}

// smokeCommands run inside the builder image's root file system, as the compile
// function runs them: every toolchain starts (its shared libraries are all there) and
// builds a module.
var smokeCommands = [][]string{
	{"clang-19", "--target=wasm32", "-O2", "-nostdlib", "-Wl,--no-entry", "-Wl,--export=loop", "-o", "/work/c.wasm", "/work/a.c"},
	{"wasm-ld-19", "--version"},
	{"wat2wasm", "/work/a.wat", "-o", "/work/wat.wasm"},
	{"wasm-opt", "-Oz", "/work/c.wasm", "-o", "/work/c.opt.wasm"},
	{"/usr/bin/rustc", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib", "-O", "--sysroot", "/" + rustSysrootDir,
		"-C", "linker=wasm-ld-19", "-o", "/work/rs.wasm", "/work/a.rs"},
	{"node", "/" + ascDir + "/node_modules/assemblyscript/bin/asc.js", "/work/a.ts", "--outFile", "/work/ts.wasm"},
	{"prlimit", "--version"},
	{"bwrap", "--version"},
}

// smoke pulls the builder image ref, unpacks it and runs smokeCommands in it with
// bubblewrap (no container runtime needed), checking that each module was written.
func smoke(ctx context.Context, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	dir, err := os.MkdirTemp("", "wasmbed-smoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rootfs, work := filepath.Join(dir, "rootfs"), filepath.Join(dir, "work")
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := unpack(rc, rootfs); err != nil {
		return fmt.Errorf("unpack %s: %w", ref, err)
	}
	if err := os.MkdirAll(work, 0o777); err != nil {
		return err
	}
	for n, src := range smokeSources {
		if err := os.WriteFile(filepath.Join(work, n), []byte(src), 0o644); err != nil {
			return err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	for _, c := range smokeCommands {
		args := []string{"--bind", rootfs, "/", "--bind", work, "/work", "--proc", "/proc", "--dev", "/dev",
			"--tmpfs", "/tmp", "--unshare-all", "--die-with-parent", "--clearenv"}
		for _, e := range cf.Config.Env {
			k, v, _ := strings.Cut(e, "=")
			args = append(args, "--setenv", k, v)
		}
		args = append(args, "--setenv", "HOME", "/tmp", "--chdir", "/tmp")
		out, err := exec.CommandContext(ctx, "bwrap", append(args, c...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("in the builder image, %s: %w\n%s", strings.Join(c, " "), err, out)
		}
		fmt.Fprintf(os.Stderr, "images: builder image: %s: ok\n", strings.Join(c[:min(2, len(c))], " "))
	}
	for _, m := range []string{"c.wasm", "c.opt.wasm", "wat.wasm", "rs.wasm", "ts.wasm"} {
		b, err := os.ReadFile(filepath.Join(work, m))
		if err != nil || len(b) < 8 || string(b[:4]) != "\x00asm" {
			return fmt.Errorf("in the builder image: %s is not a WebAssembly module (%v)", m, err)
		}
	}
	return nil
}

// unpack writes a flattened image file system into dir.
func unpack(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) && p != dir {
			return fmt.Errorf("%s escapes the root", h.Name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode&0o7777)); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(h.Linkname)), p); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode&0o7777))
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
