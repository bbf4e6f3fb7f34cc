package provision

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/wasmbed/wasmbed/internal/pki"
)

// NetSection is the ELF section of a network image (make -C firmware net) that holds
// what the board needs to enroll and reach its gateway (layout: firmware/README.md,
// "Network image").
const NetSection = ".wb_net"

// NetMagic starts a provisioned network section; a section without it holds nothing.
var NetMagic = [4]byte{'W', 'B', 'N', '1'}

// Limits of the network section's fields, as firmware/net/net.h lays them out.
const (
	netSize     = 1876
	maxIDLen    = 127
	maxHostLen  = 63
	maxTokenLen = 63
	minTokenLen = 16
	maxCALen    = 1536
	seedLen     = 32
)

// Net is what a network image is provisioned with at flash time.
type Net struct {
	// Identity is the device the bootstrap token is bound to.
	Identity pki.Identity
	// Gateway is the gateway's device port (mutual TLS) as the board reaches it: an
	// IPv4 address and port (in QEMU, the guestfwd address, e.g. 10.0.2.100:8443).
	Gateway netip.AddrPort
	// EnrollPort is the port of the gateway's HTTPS API (POST /enroll), same address.
	EnrollPort uint16
	// ServerName is the DNS name the gateway's certificate must carry.
	ServerName string
	// Token is the single-use bootstrap token (16 to 63 printable ASCII characters).
	Token string
	// CA is the platform CA: the gateway's certificate and the device's must chain to it.
	CA *x509.Certificate
	// Seed is the DRBG's provisioned entropy, 32 bytes unique to this board; nil takes
	// 32 fresh bytes from crypto/rand (what a factory should do).
	Seed []byte
}

// check validates every field, naming the first bad one.
func (n *Net) check() error {
	if err := n.Identity.Validate(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if id := n.Identity.String(); len(id) > maxIDLen || !printable(id) {
		return fmt.Errorf("identity %q: at most %d printable characters", id, maxIDLen)
	}
	if !n.Gateway.IsValid() || !n.Gateway.Addr().Is4() || n.Gateway.Addr().IsUnspecified() || n.Gateway.Addr().As4()[0] == 0 {
		return fmt.Errorf("gateway address %v: want an IPv4 address and port", n.Gateway)
	}
	if n.Gateway.Port() == 0 || n.EnrollPort == 0 {
		return errors.New("gateway ports: both the device port and the enrollment port must be set")
	}
	if err := checkHostName(n.ServerName); err != nil {
		return err
	}
	if len(n.Token) < minTokenLen || len(n.Token) > maxTokenLen || !printable(n.Token) {
		return fmt.Errorf("bootstrap token: want %d to %d printable ASCII characters without spaces, got %d bytes",
			minTokenLen, maxTokenLen, len(n.Token))
	}
	if n.CA == nil {
		return errors.New("CA: none given")
	}
	if !n.CA.IsCA {
		return errors.New("CA: the certificate is not a CA")
	}
	if pub, ok := n.CA.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return errors.New("CA: the device verifies ECDSA P-256 only")
	}
	if len(n.CA.Raw) == 0 || len(n.CA.Raw) > maxCALen {
		return fmt.Errorf("CA: %d bytes of DER, at most %d fit", len(n.CA.Raw), maxCALen)
	}
	if n.Seed != nil && len(n.Seed) != seedLen {
		return fmt.Errorf("seed: %d bytes, want %d", len(n.Seed), seedLen)
	}
	if n.Seed != nil && bytes.Equal(n.Seed, make([]byte, seedLen)) {
		return errors.New("seed: all zero")
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// checkHostName accepts a DNS name of letters, digits, hyphens and dots.
func checkHostName(h string) error {
	if h == "" || len(h) > maxHostLen {
		return fmt.Errorf("server name %q: want a DNS name of 1 to %d characters", h, maxHostLen)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("server name %q: empty label or one starting or ending with '-'", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("server name %q: %q is not allowed in a DNS name", h, c)
			}
		}
	}
	return nil
}

// encode lays n out as firmware/net/net.h's wbn_prov.
func (n *Net) encode() ([]byte, error) {
	if err := n.check(); err != nil {
		return nil, err
	}
	seed := n.Seed
	if seed == nil {
		seed = make([]byte, seedLen)
		if _, err := rand.Read(seed); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	id := n.Identity.String()
	b := make([]byte, netSize)
	copy(b[0:], NetMagic[:])
	ip := n.Gateway.Addr().As4()
	copy(b[4:], ip[:])
	binary.LittleEndian.PutUint16(b[8:], n.Gateway.Port())
	binary.LittleEndian.PutUint16(b[10:], n.EnrollPort)
	binary.LittleEndian.PutUint16(b[12:], uint16(len(n.CA.Raw)))
	b[14], b[15], b[16] = byte(len(n.Token)), byte(len(n.ServerName)), byte(len(id))
	copy(b[20:52], seed)
	copy(b[52:180], id)
	copy(b[180:244], n.ServerName)
	copy(b[244:308], n.Token)
	copy(b[308:308+maxCALen], n.CA.Raw)
	sum := sha256.Sum256(b[:netSize-32])
	copy(b[netSize-32:], sum[:])
	return b, nil
}

// NetImage returns a copy of a network image with n written into its .wb_net section.
func NetImage(image []byte, n Net) ([]byte, error) {
	raw, err := n.encode()
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	off, err := sectionOffset(image, NetSection, uint64(len(raw)))
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(image)
	copy(out[off:], raw)
	return out, nil
}

// ReadNet returns what a network image was provisioned with (Seed included), or nil
// when its section holds nothing. A section that is provisioned but damaged (bad
// checksum, a field out of range) is an error.
func ReadNet(image []byte) (*Net, error) {
	off, err := sectionOffset(image, NetSection, netSize)
	if err != nil {
		return nil, err
	}
	b := image[off : off+netSize]
	if !bytes.Equal(b[:4], NetMagic[:]) {
		return nil, nil
	}
	if sum := sha256.Sum256(b[:netSize-32]); !bytes.Equal(sum[:], b[netSize-32:]) {
		return nil, errors.New("provision: the .wb_net section's checksum does not match")
	}
	tokLen, hostLen, idLen, caLen := int(b[14]), int(b[15]), int(b[16]), int(binary.LittleEndian.Uint16(b[12:]))
	if tokLen > maxTokenLen || hostLen > maxHostLen || idLen > maxIDLen || caLen > maxCALen {
		return nil, errors.New("provision: a .wb_net length is out of range")
	}
	ns, name, ok := strings.Cut(string(b[52:52+idLen]), "/")
	if !ok {
		return nil, errors.New("provision: the .wb_net identity has no '/'")
	}
	ca, err := x509.ParseCertificate(b[308 : 308+caLen])
	if err != nil {
		return nil, fmt.Errorf("provision: the .wb_net CA: %w", err)
	}
	n := &Net{
		Identity:   pki.Identity{Namespace: ns, Name: name},
		Gateway:    netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.LittleEndian.Uint16(b[8:])),
		EnrollPort: binary.LittleEndian.Uint16(b[10:]),
		ServerName: string(b[180 : 180+hostLen]),
		Token:      string(b[244 : 244+tokLen]),
		CA:         ca,
		Seed:       bytes.Clone(b[20:52]),
	}
	if err := n.check(); err != nil {
		return nil, fmt.Errorf("provision: the .wb_net section: %w", err)
	}
	return n, nil
}

// IsNetImage reports whether image is a network image: an ELF with a .wb_net section,
// provisioned or not. Bytes that are not an ELF are an error.
func IsNetImage(image []byte) (bool, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return false, fmt.Errorf("not an ELF firmware image: %w", err)
	}
	defer f.Close()
	return f.Section(NetSection) != nil, nil
}

// NetFile provisions the network image at src with the deployment key and n and
// writes it to dst (replaced atomically, mode 0600: it holds a bootstrap token).
func NetFile(src, dst string, key []byte, n Net) error {
	info, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("provision %s: %w", src, err)
	}
	if info.Size() > maxImage {
		return fmt.Errorf("provision %s: %d bytes, more than any board's image (%d)", src, info.Size(), maxImage)
	}
	image, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("provision %s: %w", src, err)
	}
	out, err := Key(image, key)
	if err == nil {
		out, err = NetImage(out, n)
	}
	if err != nil {
		return fmt.Errorf("provision %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("provision %s: %w", dst, err)
	}
	return pki.WriteFile(dst, out, 0o600)
}

// sectionOffset finds the file offset of section name, checking that it is loaded from
// the file (into flash) and holds at least need bytes.
func sectionOffset(image []byte, name string, need uint64) (int, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return 0, fmt.Errorf("not an ELF firmware image: %w", err)
	}
	defer f.Close()
	s := f.Section(name)
	if s == nil {
		if name == NetSection {
			return 0, errors.New("the image has no " + name + " section: not a network image (make -C firmware net)")
		}
		return 0, errors.New("the image has no " + name + " section: built before deployment keys, rebuild it")
	}
	if s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_ALLOC == 0 || s.Size < need {
		return 0, fmt.Errorf("the image's %s section cannot hold %d bytes (type %s, %d bytes)", name, need, s.Type, s.Size)
	}
	if s.Offset > uint64(len(image)) || uint64(len(image))-s.Offset < need {
		return 0, fmt.Errorf("the image's %s section lies outside the file", name)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Off <= s.Offset && s.Offset+need <= p.Off+p.Filesz {
			return int(s.Offset), nil
		}
	}
	return 0, fmt.Errorf("the image's %s section is not in a loaded segment", name)
}
