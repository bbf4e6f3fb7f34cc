// Command validate is the validate function: a Knative Service that checks built modules
// against the Wasmbed ABI and the target boards (docs/events.md).
//
// Environment: PORT (default 8080); ARTIFACTS, the artifact store URL.
package main

import (
	"errors"
	"log/slog"
	"os"

	"github.com/wasmbed/wasmbed/internal/pki"

	"github.com/wasmbed/wasmbed/functions/validate"
	"github.com/wasmbed/wasmbed/internal/artifacts"
	"github.com/wasmbed/wasmbed/internal/eventserver"
)

func main() {
	eventserver.Main("validate", func(log *slog.Logger) (eventserver.Handler, error) {
		store, err := artifacts.NewFromURL(os.Getenv("ARTIFACTS"), artifacts.NewClientConfig())
		if err != nil {
			return nil, err
		}
		path := os.Getenv("VALIDATION_KEY_FILE")
		if path == "" {
			return nil, errors.New("VALIDATION_KEY_FILE is not set: it must name the validator's Ed25519 key, which signs the attestation of every module that passes")
		}
		key, err := pki.LoadSigningKey(path)
		if err != nil {
			return nil, err
		}
		return validate.New(validate.Config{Store: store, Attester: key, Logger: log})
	})
}
