package netboot

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Console collects the lines a running board writes on its UART (QEMU's stdout with
// -serial stdio, as Args sets it), for a caller that waits for what the board says.
type Console struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// Collect reads r line by line in a goroutine until r ends (the process exited or its
// pipe closed); Done is closed then.
func Collect(r io.Reader) *Console {
	c := &Console{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, strings.TrimRight(sc.Text(), "\r"))
			c.mu.Unlock()
		}
	}()
	return c
}

// Done is closed once the console's reader has ended.
func (c *Console) Done() <-chan struct{} { return c.done }

// Lines returns the lines so far.
func (c *Console) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Count returns how many lines so far contain s.
func (c *Console) Count(s string) int {
	n := 0
	for _, l := range c.Lines() {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// Wait returns once n lines contain s, or an error when timeout passes first.
func (c *Console) Wait(s string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.Count(s) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("the console did not say %q %d time(s) within %v", s, n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
