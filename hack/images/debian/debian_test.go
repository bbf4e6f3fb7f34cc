package debian_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/hack/images/debian"
)

const sum = "b9f76b5271a7ac373fd5e7e1b5b826a71ddd702b42a0d104955ecb1acfffc94b"

func TestLockRoundTrip(t *testing.T) {
	l := debian.Lock{
		{Name: "ca-certificates", Version: "20250419~deb12u2", Arch: "all", SHA256: sum},
		{Name: "libc6", Version: "2.36-9+deb12u14", Arch: "amd64", SHA256: sum},
	}
	var b bytes.Buffer
	if err := l.Format(&b, "two lines\nof header"); err != nil {
		t.Fatal(err)
	}
	got, err := debian.ParseLock(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1] != l[1] {
		t.Errorf("read back %+v", got)
	}
	if a := got.Arches(); len(a) != 2 || a[0] != "all" || a[1] != "amd64" {
		t.Errorf("arches %v", a)
	}
}

func TestParseLockRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"a missing checksum": "tzdata 2026f all\n",
		"a short checksum":   "tzdata 2026f all abc\n",
		"unsorted":           "tzdata 1 all " + sum + "\nnetbase 6.4 all " + sum + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := debian.ParseLock(strings.NewReader(text)); err == nil {
				t.Error("parsed")
			}
		})
	}
}

func TestSlim(t *testing.T) {
	for name, keep := range map[string]bool{
		"./usr/bin/clang-14":                  true,
		"./usr/share/doc/tzdata/copyright":    true,
		"./usr/share/doc/tzdata/":             true,
		"./usr/share/doc/tzdata/changelog.gz": false,
		"./usr/share/man/man1/clang.1.gz":     false,
		"./usr/share/locale/de/LC_MESSAGES/x": false,
		"./usr/share/man/":                    true,
		"./usr/share/zoneinfo/Europe/Berlin":  true,
		"./usr/lib/rustlib/wasm32/lib/x.rlib": true,
	} {
		if got := debian.Slim(name); got != keep {
			t.Errorf("Slim(%s) = %v, want %v", name, got, keep)
		}
	}
}
