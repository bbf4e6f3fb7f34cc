package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// sourceHash is the hash console/web/scripts/source-hash.mjs records in
// web/dist/source-hash when it builds the UI: for each input file in byte order of its
// slash-separated path, the line "<path> <sha256 of content>\n"; the hash of the lines.
func sourceHash(root string) (string, error) {
	var files []string
	for _, in := range []string{"index.html", "package-lock.json", "package.json", "tsconfig.json", "vite.config.ts", "src"} {
		err := filepath.WalkDir(filepath.Join(root, in), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.HasSuffix(p, ".test.ts") || strings.HasSuffix(p, ".test.tsx") {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %x\n", f, sha256.Sum256(b))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TestDistIsFresh fails when the committed UI build is older than its sources.
func TestDistIsFresh(t *testing.T) {
	got, err := sourceHash("web")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("web", "dist", "source-hash"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != got {
		t.Fatalf("console/web/dist was built from other sources (recorded %s, sources hash to %s): run console/web/install.sh && npm --prefix console/web run build, and commit dist",
			strings.TrimSpace(string(want)), got)
	}
	if _, err := fs.Stat(web, "web/dist/index.html"); err != nil {
		t.Fatalf("the embedded UI has no index.html: %v", err)
	}
}
