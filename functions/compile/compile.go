// Package function is the compile function: it turns a dev.wasmbed.build.requested
// event into a module in the artifact store and replies dev.wasmbed.module.built, or
// dev.wasmbed.build.failed with the compiler's diagnostics (file:line) when the source
// is wrong. Prebuilt modules (OCI, URL, ConfigMap) are fetched, checked and stored the
// same way: OCI and URL sources only from the hosts of Config.Fetch's allow-list,
// ConfigMaps only from the Application's namespace.
package compile

import (
	"github.com/wasmbed/wasmbed/api/digest"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/events"
	"github.com/wasmbed/wasmbed/builder"
	"github.com/wasmbed/wasmbed/internal/artifacts"
)

// Build failure reasons, as documented in docs/events.md.
const (
	ReasonCompileError   = "CompileError"
	ReasonSourceNotFound = "SourceNotFound"
	ReasonModuleTooLarge = "ModuleTooLarge"
	ReasonDigestMismatch = "DigestMismatch"
	ReasonFetchFailed    = "FetchFailed"
)

// maxLogTail bounds the build log carried by events (and Application status).
const maxLogTail = 4 << 10

// Config configures the function.
type Config struct {
	// Store receives built and fetched modules.
	Store artifacts.Store
	// Builder compiles source; nil uses builder defaults.
	Builder *builder.Builder
	// Fetch configures access to registries and URLs for prebuilt modules, and which
	// hosts they may come from (its allow-list; the zero value admits none).
	Fetch artifacts.ClientConfig
	// Reader reads ConfigMaps holding prebuilt modules; nil refuses such sources.
	Reader client.Reader
	// Optimize runs wasm-opt on built modules when binaryen is installed.
	Optimize bool
	// Logger receives one line per build.
	Logger *slog.Logger
}

// Function is the compile function.
type Function struct {
	cfg Config
}

// New returns the compile function.
func New(cfg Config) (*Function, error) {
	if cfg.Store == nil {
		return nil, errors.New("compile: an artifact store is required")
	}
	if cfg.Builder == nil {
		cfg.Builder = builder.New(builder.NewConfig())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Function{cfg: cfg}, nil
}

// Handle builds or fetches the module a build request names.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	in, err := events.DecodeAs[*events.BuildRequestedData](e, events.BuildRequested)
	if err != nil {
		return nil, err
	}
	ref := in.Application
	var module []byte
	var toolchain, logTail string
	if in.Source.Module != nil {
		module, err = f.fetch(ctx, ref, in.Source.Module)
		toolchain = "prebuilt"
	} else {
		var res builder.Result
		res, err = f.cfg.Builder.Build(ctx, builder.Request{
			Language: builder.Language(in.Source.Language),
			Source:   []byte(in.Source.Code),
			Options:  builder.Options{Optimize: f.cfg.Optimize},
		})
		module, toolchain, logTail = res.Module, res.Toolchain, tail(res.Log)
	}
	if err != nil {
		var failed *buildFailure
		if errors.As(err, &failed) {
			f.cfg.Logger.Info("build failed", "application", ref.Subject(), "reason", failed.data.Reason, "message", failed.data.Message)
			return reply(events.BuildFailed, ref, failed.data)
		}
		if builder.IsUserError(err) {
			data := userFailure(ref, err)
			f.cfg.Logger.Info("build failed", "application", ref.Subject(), "reason", data.Reason, "message", data.Message)
			return reply(events.BuildFailed, ref, data)
		}
		return nil, fmt.Errorf("build %s: %w", ref.Subject(), err)
	}
	digest, err := f.cfg.Store.Put(ctx, module)
	if err != nil {
		return nil, fmt.Errorf("store module of %s: %w", ref.Subject(), err)
	}
	f.cfg.Logger.Info("module built", "application", ref.Subject(), "digest", digest, "size", len(module), "toolchain", toolchain)
	return reply(events.ModuleBuilt, ref, &events.ModuleBuiltData{
		Application: ref, Digest: digest, Size: int64(len(module)),
		Toolchain: toolchain, LogTail: logTail, Boards: in.Boards,
	})
}

func reply(t events.Type, ref events.AppRef, data events.Payload) (*cloudevents.Event, error) {
	out, err := events.New(t, events.SourceCompile, ref.Subject(), data)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// buildFailure is a fetch problem that is the user's to fix (a build.failed reply).
type buildFailure struct{ data *events.BuildFailedData }

func (b *buildFailure) Error() string { return b.data.Message }

func failure(ref events.AppRef, reason, format string, args ...any) error {
	return &buildFailure{data: &events.BuildFailedData{Application: ref, Reason: reason, Message: fmt.Sprintf(format, args...)}}
}

// userFailure describes a build error that is the user's to fix.
func userFailure(ref events.AppRef, err error) *events.BuildFailedData {
	data := &events.BuildFailedData{Application: ref, Reason: ReasonCompileError}
	var ce *builder.CompileError
	var le *builder.LimitError
	switch {
	case errors.As(err, &ce):
		var lines []string
		for _, d := range ce.Diagnostics {
			data.Diagnostics = append(data.Diagnostics, events.Diagnostic{
				File: d.File, Line: d.Line, Column: d.Column, Severity: string(d.Severity), Message: d.Message,
			})
		}
		for _, d := range ce.Errors() {
			lines = append(lines, d.String())
		}
		if len(lines) == 0 {
			lines = []string{ce.Error()}
		}
		data.Message = strings.Join(lines, "\n")
		data.LogTail = tail(ce.Log)
	case errors.As(err, &le):
		data.Reason = ReasonModuleTooLarge
		if le.Limit != builder.LimitOutputSize {
			data.Reason = ReasonCompileError
		}
		data.Message = le.Error()
	default:
		data.Message = err.Error()
	}
	if len(data.Message) > 2048 {
		data.Message = data.Message[:2048] + "\n…"
	}
	return data
}

// fetch gets a prebuilt module, checking it against the expected digest.
func (f *Function) fetch(ctx context.Context, ref events.AppRef, m *events.Module) ([]byte, error) {
	switch {
	case m.OCI != "" || m.URL != "":
		src := m.OCI
		if m.URL != "" {
			src = m.URL
		}
		// Fetch names the source in its errors, and quotes nothing of what a server
		// answered but its status: the message can go back to the user as it is.
		b, _, err := artifacts.Fetch(ctx, src, m.Digest, f.cfg.Fetch)
		switch {
		case errors.Is(err, artifacts.ErrDigestMismatch):
			return nil, failure(ref, ReasonDigestMismatch, "%v", err)
		case errors.Is(err, artifacts.ErrNotFound):
			return nil, failure(ref, ReasonSourceNotFound, "%v", err)
		case errors.Is(err, artifacts.ErrRefused):
			return nil, failure(ref, ReasonFetchFailed, "%v (an administrator lists the hosts prebuilt modules may come from)", err)
		case err != nil:
			// Network trouble is retried by the broker; a refusal of the source itself
			// (no wasm layer, oversize, bad reference) is the user's.
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, failure(ref, ReasonFetchFailed, "%v", err)
		}
		return b, nil
	case m.ConfigMap != nil:
		if f.cfg.Reader == nil {
			return nil, errors.New("configMap module sources need Kubernetes access, which this compile function was not given")
		}
		// Always the Application's namespace: a build request names no other (the
		// contract's ConfigMapKey has no namespace, and its name no '/'), so an
		// Application reads its own namespace's ConfigMaps only, whatever the
		// function's account may read.
		var cm corev1.ConfigMap
		err := f.cfg.Reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: m.ConfigMap.Name}, &cm)
		if apierrors.IsNotFound(err) {
			return nil, failure(ref, ReasonSourceNotFound, "ConfigMap %s/%s not found", ref.Namespace, m.ConfigMap.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("get ConfigMap %s/%s: %w", ref.Namespace, m.ConfigMap.Name, err)
		}
		b, ok := cm.BinaryData[m.ConfigMap.Key]
		if !ok {
			return nil, failure(ref, ReasonSourceNotFound, "ConfigMap %s/%s has no binaryData key %q", ref.Namespace, m.ConfigMap.Name, m.ConfigMap.Key)
		}
		if m.Digest != "" && digest.Of(b) != m.Digest {
			return nil, failure(ref, ReasonDigestMismatch, "ConfigMap %s/%s key %q hashes to %s, not %s", ref.Namespace, m.ConfigMap.Name, m.ConfigMap.Key, digest.Of(b), m.Digest)
		}
		return b, nil
	default:
		b, err := f.cfg.Store.Get(ctx, m.Digest)
		if errors.Is(err, artifacts.ErrNotFound) {
			return nil, failure(ref, ReasonSourceNotFound, "module %s is not in the artifact store", m.Digest)
		}
		return b, err
	}
}

func tail(s string) string {
	if len(s) <= maxLogTail {
		return s
	}
	return "…" + s[len(s)-maxLogTail:]
}
