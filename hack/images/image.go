package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmbed/wasmbed/hack/images/debian"
	"github.com/wasmbed/wasmbed/hack/images/layer"
)

// The unprivileged user every image runs as, as in distroless's :nonroot images.
const (
	nonrootUID = 65532
	nonrootDir = "home/nonroot"
)

// passwd and group name root, nobody and nonroot; no user has a shell or a password.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
	// nsswitch.conf: Go's resolver reads it; files, then DNS.
	nsswitch = "hosts: files dns\nnetworks: files\n"
	// certBundle is where Go (and OpenSSL) look for the trusted CAs.
	certBundle = "etc/ssl/certs/ca-certificates.crt"
)

// imageEnv is the environment of every image.
var imageEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"SSL_CERT_FILE=/" + certBundle,
}

// layerFile is a finished layer on disk with what produced it.
type layerFile struct {
	path      string
	createdBy string
}

// writeLayer writes a layer with fill into dir/name.tar.gz.
func writeLayer(dir, name, createdBy string, fill func(w *layer.Writer) error) (layerFile, error) {
	p := filepath.Join(dir, name+".tar.gz")
	f, err := os.Create(p)
	if err != nil {
		return layerFile{}, err
	}
	defer f.Close()
	w := layer.NewWriter(f)
	if err := fill(w); err != nil {
		return layerFile{}, fmt.Errorf("layer %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return layerFile{}, fmt.Errorf("layer %s: %w", name, err)
	}
	return layerFile{path: p, createdBy: createdBy}, f.Close()
}

// staticLayer is the whole static base: users, CA certificates, time zones and
// netbase's files, from the pinned packages of lock (architecture-independent).
func staticLayer(ctx context.Context, dir string, lock debian.Lock, debs string) (layerFile, error) {
	var names []string
	for _, p := range lock {
		if p.Arch != "all" {
			return layerFile{}, fmt.Errorf("static lock: %s is for %s; the static base takes architecture-independent packages only", p.Name, p.Arch)
		}
		names = append(names, p.Name+" "+p.Version)
	}
	return writeLayer(dir, "static", "wasmbed static base: "+strings.Join(names, ", "), func(w *layer.Writer) error {
		for _, d := range []struct {
			name     string
			mode     int64
			uid, gid int
		}{
			{"etc", 0o755, 0, 0}, {"root", 0o700, 0, 0}, {"home", 0o755, 0, 0},
			{nonrootDir, 0o700, nonrootUID, nonrootUID}, {"tmp", 0o1777, 0, 0},
		} {
			if err := w.Dir(d.name, d.mode, d.uid, d.gid); err != nil {
				return err
			}
		}
		for _, f := range []struct{ name, content string }{
			{"etc/passwd", passwd}, {"etc/group", group}, {"etc/nsswitch.conf", nsswitch},
			{"etc/os-release", osRelease},
		} {
			if err := w.File(f.name, 0o644, []byte(f.content)); err != nil {
				return err
			}
		}
		certs := map[string][]byte{}
		for _, p := range lock {
			deb, err := debian.Fetch(ctx, p, debs)
			if err != nil {
				return err
			}
			err = debian.Walk(ctx, deb, func(h *tar.Header, r io.Reader) error {
				name := layer.Clean(h.Name)
				// The bundle is made below, as update-ca-certificates would; the
				// package's single certificates and its scripts stay out.
				if strings.HasPrefix(name, "usr/share/ca-certificates/") {
					if h.Typeflag == tar.TypeReg && strings.HasSuffix(name, ".crt") {
						b, err := io.ReadAll(r)
						certs[name] = b
						return err
					}
					return nil
				}
				if p.Name == "ca-certificates" && !strings.HasPrefix(name, "usr/share/doc/") {
					return nil
				}
				if !debian.Slim(name) {
					return nil
				}
				return w.Add(h, r)
			})
			if err != nil {
				return err
			}
		}
		if len(certs) == 0 {
			return fmt.Errorf("no certificates in the ca-certificates package")
		}
		return w.File(certBundle, 0o644, bundle(certs))
	})
}

// osRelease says what the static base is (scanners read it).
const osRelease = `PRETTY_NAME="Wasmbed static (Debian 12 packages)"
NAME="Wasmbed static"
ID=wasmbed-static
ID_LIKE=debian
VERSION_ID="12"
HOME_URL="https://github.com/wasmbed/wasmbed"
`

// bundle concatenates PEM certificates in name order, each ending in a newline.
func bundle(certs map[string][]byte) []byte {
	names := make([]string, 0, len(certs))
	for n := range certs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		b.Write(certs[n])
		if !bytes.HasSuffix(certs[n], []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// debLayer holds the files of every package in lock (documentation dropped).
func debLayer(ctx context.Context, dir, name string, lock debian.Lock, debs string) (layerFile, error) {
	return writeLayer(dir, name, fmt.Sprintf("wasmbed %s: %d Debian packages (%s)", name, len(lock), lockFile(name)), func(w *layer.Writer) error {
		for _, p := range lock {
			deb, err := debian.Fetch(ctx, p, debs)
			if err != nil {
				return err
			}
			if err := debian.AddTo(ctx, w, deb, debian.Slim); err != nil {
				return err
			}
		}
		return nil
	})
}

// treeLayer holds directories from the disk, each at its place in the image.
func treeLayer(dir, name, createdBy string, trees map[string]string) (layerFile, error) {
	return writeLayer(dir, name, createdBy, func(w *layer.Writer) error {
		dests := make([]string, 0, len(trees))
		for d := range trees {
			dests = append(dests, d)
		}
		sort.Strings(dests)
		for _, d := range dests {
			if err := w.AddTree(trees[d], d); err != nil {
				return err
			}
		}
		return nil
	})
}

// platform is an image's OS and architecture, in OCI's terms.
func platform(debArch string) (v1.Platform, error) {
	switch debArch {
	case "amd64":
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case "arm64":
		return v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, nil
	}
	return v1.Platform{}, fmt.Errorf("no OCI platform for Debian architecture %q", debArch)
}

// image stacks layers into an OCI image for p, running as nonroot with env.
func image(p v1.Platform, env []string, layers ...layerFile) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	epoch := v1.Time{Time: layer.Epoch}
	for _, lf := range layers {
		opener := func() (io.ReadCloser, error) { return os.Open(lf.path) }
		l, err := tarball.LayerFromOpener(opener, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lf.path, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{Created: epoch, CreatedBy: lf.createdBy, Comment: "wasmbed hack/images"}})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = epoch
	cf.Config = v1.Config{
		Env:        env,
		User:       fmt.Sprintf("%d:%d", nonrootUID, nonrootUID),
		WorkingDir: "/" + nonrootDir,
	}
	return mutate.ConfigFile(img, cf)
}

// index is a multi-platform image of imgs, one per platform.
func index(imgs map[string]v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	arches := make([]string, 0, len(imgs))
	for a := range imgs {
		arches = append(arches, a)
	}
	sort.Strings(arches)
	for _, a := range arches {
		p, err := platform(a)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: imgs[a], Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, nil
}

// lockFile is the lock of the image name, relative to the repository root.
func lockFile(name string) string {
	if name == "builder" {
		return path.Join("builder", "image", "packages.lock")
	}
	return path.Join("hack", "images", name+".lock")
}
