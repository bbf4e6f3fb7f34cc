// Package platforms holds the Renode platform descriptions (.repl) and scripts (.resc) of
// the boards QEMU cannot run, embedded so that the board manager can hand them to a
// Renode process wherever it runs.
package platforms

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:embed *.repl *.resc
var files embed.FS

// FS returns the embedded .repl and .resc files.
func FS() fs.FS { return files }

// Script returns the name of the .resc script that goes with a platform file, e.g.
// "arduino_nano_33_ble.resc" for "arduino_nano_33_ble.repl".
func Script(platform string) string {
	return strings.TrimSuffix(platform, ".repl") + ".resc"
}

// Has reports whether the platform file (a .repl name) and its script are embedded.
func Has(platform string) bool {
	for _, name := range []string{platform, Script(platform)} {
		if _, err := fs.Stat(files, name); err != nil {
			return false
		}
	}
	return true
}

// WriteTo writes every embedded file into dir, creating it, and returns dir. Existing
// files are replaced so that dir always matches this build.
func WriteTo(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write renode platforms: %w", err)
	}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return fmt.Errorf("write renode platforms: %w", err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return fmt.Errorf("write renode platforms: %w", err)
		}
		tmp := filepath.Join(dir, "."+e.Name()+".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return fmt.Errorf("write renode platforms: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("write renode platforms: %w", err)
		}
	}
	return nil
}
