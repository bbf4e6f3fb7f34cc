package operator

import (
	"log/slog"

	"github.com/go-logr/logr"
)

// slogFrom returns a slog logger writing to the operator's logr sink.
func slogFrom(l logr.Logger) *slog.Logger { return slog.New(logr.ToSlogHandler(l)) }
