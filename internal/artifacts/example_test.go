package artifacts_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// A component picks its store from one setting: a directory on a laptop, a registry
// repository in a cluster. Events carry only the digest Put returns.
func ExampleNewFromURL() {
	cfg := artifacts.NewClientConfig().
		WithDockerConfig("/var/run/secrets/wasmbed/registry/config.json").
		WithTimeout(10 * time.Second)
	store, err := artifacts.NewFromURL("oci://registry.example/wasmbed/modules", cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	digest, err := store.Put(ctx, []byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		log.Fatal(err)
	}
	module, err := store.Get(ctx, digest)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(module))
}

// The compile function accepts prebuilt modules from an OCI artifact in the wasm
// layout or from an http(s) URL, pinned by digest, from the hosts its allow-list
// names: here ghcr.io, and any name under example.com that resolves to public
// addresses.
func ExampleFetch() {
	allow, err := artifacts.ParseAllowList("ghcr.io, *.example.com")
	if err != nil {
		log.Fatal(err)
	}
	module, digest, err := artifacts.Fetch(context.Background(),
		"ghcr.io/example/blinky:1.2.0",
		"sha256:0000000000000000000000000000000000000000000000000000000000000000",
		artifacts.NewClientConfig().WithAllowList(allow))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(digest, len(module))
}
