package gateway_test

import (
	"time"

	"github.com/wasmbed/wasmbed/internal/devicesim"
)

func nsOpt(ns string) func(*devicesim.Config) { return func(c *devicesim.Config) { c.Namespace = ns } }
func windowOpt(w uint32) func(*devicesim.Config) {
	return func(c *devicesim.Config) { c.Window = w; c.MaxFrame = 512 }
}
func heartbeatOpt(d time.Duration) func(*devicesim.Config) {
	return func(c *devicesim.Config) { c.Heartbeat = d }
}
