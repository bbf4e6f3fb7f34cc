package digest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/wasmbed/wasmbed/api/digest"
)

func TestParse(t *testing.T) {
	hex64 := strings.Repeat("0a", 32)
	tests := []struct {
		in      string
		wantErr string
	}{
		{in: "sha256:" + hex64},
		{in: "", wantErr: "digest is empty"},
		{in: hex64, wantErr: "is not sha256:"},
		{in: "sha512:" + hex64, wantErr: "is not sha256:"},
		{in: "sha256:" + strings.ToUpper(hex64), wantErr: "lower-case"},
		{in: "sha256:" + hex64[:63], wantErr: "is not sha256:"},
		{in: "sha256:" + hex64 + "0", wantErr: "is not sha256:"},
		{in: "sha256:" + hex64[:62] + "zz", wantErr: "is not sha256:"},
		{in: "sha256:" + strings.Repeat("x", 500), wantErr: "..."},
	}
	for _, tt := range tests {
		d, err := digest.Parse(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Parse(%.20q): %v", tt.in, err)
		case tt.wantErr == "" && d.String() != tt.in:
			t.Errorf("Parse(%.20q) = %q", tt.in, d)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Parse(%.20q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
		case tt.wantErr != "" && len(err.Error()) > 160:
			t.Errorf("Parse error is %d bytes long: hostile input is echoed whole", len(err.Error()))
		}
	}
}

func TestRoundTrips(t *testing.T) {
	module := []byte("\x00asm\x01\x00\x00\x00")
	sum := sha256.Sum256(module)
	d := digest.Of(module)
	if want := "sha256:" + hex.EncodeToString(sum[:]); d.String() != want {
		t.Fatalf("Of = %s, want %s", d, want)
	}
	if !bytes.Equal(d.Bytes(), sum[:]) || d.Hex() != hex.EncodeToString(sum[:]) {
		t.Fatalf("Bytes/Hex = %x/%s", d.Bytes(), d.Hex())
	}
	back, err := digest.FromBytes(sum[:])
	if err != nil || back != d {
		t.Fatalf("FromBytes = %s, %v", back, err)
	}
	if _, err := digest.FromBytes(sum[:31]); err == nil {
		t.Fatal("FromBytes takes 31 bytes")
	}
	if err := d.Verify(module); err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(append(module, 0)); err == nil {
		t.Fatal("Verify accepts other content")
	}
	if err := digest.Digest("sha256:zz").Verify(module); err == nil {
		t.Fatal("an invalid digest verifies")
	}
	if d.OCI().Validate() != nil || d.OCI().Encoded() != d.Hex() {
		t.Fatalf("OCI form %s is not a valid OCI digest of the same hash", d.OCI())
	}
	for _, bad := range []digest.Digest{"", "sha256:zz", "md5:00"} {
		if bad.Bytes() != nil || bad.Hex() != "" {
			t.Errorf("%q: Bytes/Hex of an invalid digest are not empty", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("ab", 32))
	f.Add("sha256:")
	f.Add("SHA256:" + strings.Repeat("AB", 32))
	f.Fuzz(func(t *testing.T, s string) {
		d, err := digest.Parse(s)
		if err != nil {
			return
		}
		back, err := digest.FromBytes(d.Bytes())
		if err != nil || back != d || d.String() != s {
			t.Fatalf("Parse(%q) = %q does not round-trip through bytes: %q, %v", s, d, back, err)
		}
	})
}
