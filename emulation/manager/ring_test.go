package manager

import (
	"strings"
	"testing"
)

func TestRing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		writes []string
		want   string
	}{
		{"empty", 8, nil, ""},
		{"fits", 8, []string{"abc", "def"}, "abcdef"},
		{"exactly full", 4, []string{"ab", "cd"}, "abcd"},
		{"wraps", 4, []string{"abc", "def"}, "cdef"},
		{"wraps twice", 4, []string{"abc", "de", "fgh", "i"}, "fghi"},
		{"one big write", 4, []string{"a", "0123456789"}, "6789"},
		{"many small", 3, strings.Split("abcdefgh", ""), "fgh"},
		{"zero size", 0, []string{"abc"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(tc.size)
			for _, w := range tc.writes {
				if n, err := r.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := string(r.Bytes()); got != tc.want {
				t.Errorf("Bytes() = %q, want %q", got, tc.want)
			}
		})
	}
}
