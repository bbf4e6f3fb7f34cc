package netboot_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wasmbed/wasmbed/firmware/netboot"
)

func TestConsole(t *testing.T) {
	r, w := io.Pipe()
	c := netboot.Collect(r)
	if err := c.Wait("net: connected", 1, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), `did not say "net: connected"`) {
		t.Fatalf("Wait before any line: %v, want a timeout naming the text", err)
	}
	go func() {
		_, _ = io.WriteString(w, "boot\r\nnet: connected, TLSv1.2\nnet: connected again\n")
		_ = w.Close()
	}()
	if err := c.Wait("net: connected", 2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if got := c.Lines(); len(got) != 3 || got[0] != "boot" {
		t.Errorf("lines %q, want 3 with the carriage return trimmed", got)
	}
	if n := c.Count("connected"); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}
