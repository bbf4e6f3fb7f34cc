// Command dispatch is the dispatch function: a Knative Service that turns validated
// modules and rollout requests into deployment requests per gateway (docs/events.md).
//
// Environment: PORT (default 8080); K_SINK, the broker; DEFAULT_GATEWAY
// ("<namespace>/<name>") for devices that name no gateway; SIGNING_KEY_FILE, an ed25519
// PKCS #8 PEM key that signs every dispatched module's digest; KUBECONFIG or the
// in-cluster account, to read Applications and Devices.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/wasmbed/wasmbed/internal/artifacts"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/functions/dispatch"
	"github.com/wasmbed/wasmbed/internal/eventserver"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/sink"
)

func main() {
	eventserver.Main("dispatch", func(log *slog.Logger) (eventserver.Handler, error) {
		s, err := sink.FromEnv(sink.WithComponent("dispatch"))
		if err != nil {
			return nil, err
		}
		rc, err := ctrl.GetConfig()
		if err != nil {
			return nil, err
		}
		scheme := runtime.NewScheme()
		if err := v1.AddToScheme(scheme); err != nil {
			return nil, err
		}
		c, err := client.New(rc, client.Options{Scheme: scheme})
		if err != nil {
			return nil, err
		}
		cfg := dispatch.Config{Reader: c, Sender: s, DefaultGateway: os.Getenv("DEFAULT_GATEWAY"), Logger: log}
		if path := os.Getenv("SIGNING_KEY_FILE"); path != "" {
			if cfg.Signer, err = pki.LoadSigningKey(path); err != nil {
				return nil, err
			}
		}
		// Only modules the validator attested are dispatched: its public key, and the
		// store that holds the attestations beside the modules.
		if path := os.Getenv("VALIDATOR_PUBLIC_KEY_FILE"); path != "" {
			if cfg.Validator, err = pki.LoadPublicKey(path); err != nil {
				return nil, err
			}
			if cfg.Attestations, err = artifacts.NewFromURL(os.Getenv("ARTIFACTS"), artifacts.NewClientConfig()); err != nil {
				return nil, fmt.Errorf("ARTIFACTS: %w", err)
			}
		}
		return dispatch.New(cfg)
	})
}
