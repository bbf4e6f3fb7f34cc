package provision_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/firmware/internal/fwbuild"
	"github.com/wasmbed/wasmbed/firmware/provision"
	"github.com/wasmbed/wasmbed/internal/pki"
)

func goodNet(t testing.TB) provision.Net {
	t.Helper()
	ca, err := pki.NewCA("platform", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return provision.Net{
		Identity:   pki.Identity{Namespace: "default", Name: "board-7"},
		Gateway:    netip.MustParseAddrPort("10.0.2.100:8443"),
		EnrollPort: 8080,
		ServerName: "gateway.wasmbed.test",
		Token:      "0123456789abcdef-token",
		CA:         ca.Cert,
	}
}

// The board itself checks what it reads (firmware/nettest boots provisioned images);
// this checks the section, and that every hostile field is refused with its name.
func TestNet(t *testing.T) {
	image, err := os.ReadFile(fwbuild.NetImage(t, "mps2-an386"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := provision.ReadNet(image); err != nil || n != nil {
		t.Fatalf("the built image holds %+v (%v), want nothing", n, err)
	}
	n := goodNet(t)
	out, err := provision.NetImage(image, n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := provision.ReadNet(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Identity != n.Identity || got.Gateway != n.Gateway || got.EnrollPort != n.EnrollPort ||
		got.ServerName != n.ServerName || got.Token != n.Token || !got.CA.Equal(n.CA) {
		t.Fatalf("read back %+v, want %+v", got, n)
	}
	if len(got.Seed) != 32 || bytes.Equal(got.Seed, make([]byte, 32)) {
		t.Fatalf("seed %x: want 32 random bytes", got.Seed)
	}
	again, _ := provision.NetImage(image, n)
	if g2, _ := provision.ReadNet(again); bytes.Equal(g2.Seed, got.Seed) {
		t.Fatal("two provisionings got the same seed")
	}
	if d := countDiff(image, out); d > 1876 {
		t.Fatalf("provisioning changed %d bytes, more than the section", d)
	}

	// A damaged section is refused, not half-read.
	i := bytes.Index(out, []byte(n.Token))
	bad := bytes.Clone(out)
	bad[i] ^= 1
	if _, err := provision.ReadNet(bad); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("a flipped token byte: %v, want a checksum error", err)
	}

	// NetFile writes the deployment key too.
	pub, _, _ := ed25519.GenerateKey(nil)
	src := filepath.Join(t.TempDir(), "firmware.elf")
	dst := filepath.Join(t.TempDir(), "board", "firmware.elf")
	if err := os.WriteFile(src, image, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := provision.NetFile(src, dst, pub, n); err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(dst)
	if k, err := provision.ReadKey(written); err != nil || !bytes.Equal(k, pub) {
		t.Fatalf("deployment key %x (%v), want %x", k, err, pub)
	}
	if info, _ := os.Stat(dst); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v: the image holds a token, want 0600", info.Mode())
	}

	uart, err := os.ReadFile(fwbuild.Image(t, "mps2-an386"))
	if err != nil {
		t.Fatal(err)
	}
	notCA := *n.CA
	notCA.IsCA = false
	rsaLike := *n.CA
	rsaLike.PublicKey = pub
	refused := []struct {
		name  string
		image []byte
		edit  func(*provision.Net)
		want  string
	}{
		{"UART image", uart, nil, "not a network image"},
		{"not an ELF", []byte("\x7fELF not really"), nil, "not an ELF"},
		{"no namespace", image, func(n *provision.Net) { n.Identity.Namespace = "" }, "identity"},
		{"bad name", image, func(n *provision.Net) { n.Identity.Name = "Bad Name" }, "identity"},
		{"ipv6 gateway", image, func(n *provision.Net) { n.Gateway = netip.MustParseAddrPort("[::1]:8443") }, "IPv4"},
		{"no gateway", image, func(n *provision.Net) { n.Gateway = netip.AddrPort{} }, "IPv4"},
		{"port 0", image, func(n *provision.Net) { n.Gateway = netip.MustParseAddrPort("10.0.2.100:0") }, "ports"},
		{"no enroll port", image, func(n *provision.Net) { n.EnrollPort = 0 }, "ports"},
		{"empty server name", image, func(n *provision.Net) { n.ServerName = "" }, "server name"},
		{"server name with a space", image, func(n *provision.Net) { n.ServerName = "gate way" }, "server name"},
		{"server name too long", image, func(n *provision.Net) { n.ServerName = strings.Repeat("a", 64) }, "server name"},
		{"server name label", image, func(n *provision.Net) { n.ServerName = "-gw.test" }, "server name"},
		{"short token", image, func(n *provision.Net) { n.Token = "short" }, "bootstrap token"},
		{"long token", image, func(n *provision.Net) { n.Token = strings.Repeat("t", 64) }, "bootstrap token"},
		{"token with a quote", image, func(n *provision.Net) { n.Token = "0123456789abcdef\"x" }, ""},
		{"token with a newline", image, func(n *provision.Net) { n.Token = "0123456789abcdef\nx" }, "bootstrap token"},
		{"token with a NUL", image, func(n *provision.Net) { n.Token = "0123456789abcdef\x00x" }, "bootstrap token"},
		{"no CA", image, func(n *provision.Net) { n.CA = nil }, "CA"},
		{"not a CA", image, func(n *provision.Net) { n.CA = &notCA }, "not a CA"},
		{"CA key not P-256", image, func(n *provision.Net) { n.CA = &rsaLike }, "P-256"},
		{"CA too large", image, func(n *provision.Net) {
			big := *n.CA
			big.Raw = make([]byte, 1537)
			n.CA = &big
		}, "at most 1536"},
		{"short seed", image, func(n *provision.Net) { n.Seed = make([]byte, 16) }, "seed"},
		{"zero seed", image, func(n *provision.Net) { n.Seed = make([]byte, 32) }, "all zero"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			n := goodNet(t)
			if tc.edit != nil {
				tc.edit(&n)
			}
			_, err := provision.NetImage(tc.image, n)
			if tc.want == "" { // allowed: the firmware escapes it in its JSON
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// FuzzReadNet: whatever an image's .wb_net section holds, ReadNet returns a checked Net,
// nothing, or an error, and never panics.
func FuzzReadNet(f *testing.F) {
	image, err := os.ReadFile(fwbuild.NetImage(f, "mps2-an386"))
	if err != nil {
		f.Fatal(err)
	}
	n := goodNet(f)
	out, err := provision.NetImage(image, n)
	if err != nil {
		f.Fatal(err)
	}
	off := bytes.Index(out, provision.NetMagic[:])
	f.Add(out[off : off+1876])
	f.Add(make([]byte, 1876))
	f.Fuzz(func(t *testing.T, section []byte) {
		img := bytes.Clone(out)
		copy(img[off:off+1876], section)
		if len(section) >= 1876 && section[20]&1 == 0 { // sealed (a seed bit decides): reach the fields past the checksum
			sum := sha256.Sum256(img[off : off+1844])
			copy(img[off+1844:off+1876], sum[:])
		}
		got, err := provision.ReadNet(img)
		if err == nil && got != nil {
			if _, err := x509.ParseCertificate(got.CA.Raw); err != nil {
				t.Fatalf("ReadNet returned a CA that does not parse: %v", err)
			}
			if _, err := provision.NetImage(image, *got); err != nil {
				t.Fatalf("ReadNet returned a Net that NetImage refuses: %v", err)
			}
		}
	})
}
