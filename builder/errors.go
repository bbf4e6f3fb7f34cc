package builder

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Request errors: the caller sent something the builder cannot build.
var (
	// ErrUnknownLanguage is returned, wrapped, for a Language the builder does not know.
	ErrUnknownLanguage = errors.New("unknown language")
	// ErrEmptySource is returned when a Request has no source text.
	ErrEmptySource = errors.New("empty source")
	// ErrInvalidRequest is returned, wrapped, for an option out of range.
	ErrInvalidRequest = errors.New("invalid request")
)

// errBuildTimeout is the cause of a build context that hit the builder's own timeout.
var errBuildTimeout = errors.New("build timed out")

// CompileError means the compiler rejected the user's source: the application is
// wrong, not the builder. Diagnostics name the file and line; Error returns the
// first error, formatted like the compiler would ("main.c:3:5: error: ...").
type CompileError struct {
	Language    Language
	Diagnostics []Diagnostic
	// Log is the tail of the compilers' output.
	Log string
}

func (e *CompileError) Error() string {
	var first *Diagnostic
	errs := 0
	for i := range e.Diagnostics {
		if e.Diagnostics[i].Severity == SeverityError {
			if first == nil {
				first = &e.Diagnostics[i]
			}
			errs++
		}
	}
	if first == nil {
		return "compile failed"
	}
	msg := first.String()
	if errs > 1 {
		msg += fmt.Sprintf(" (and %d more errors)", errs-1)
	}
	return msg
}

// Errors returns the diagnostics of severity error.
func (e *CompileError) Errors() []Diagnostic {
	var out []Diagnostic
	for _, d := range e.Diagnostics {
		if d.Severity == SeverityError {
			out = append(out, d)
		}
	}
	return out
}

// Limit names a resource limit a build can exceed.
type Limit string

// The limits a LimitError reports.
const (
	LimitSourceSize Limit = "source size"
	LimitOutputSize Limit = "output size"
	LimitTime       Limit = "time"
	LimitCPU        Limit = "cpu time"
	LimitMemory     Limit = "memory"
)

// LimitError means a build exceeded a limit: the source or module is too large,
// or the compiler ran out of time or memory (usually pathological source). A
// timeout also matches errors.Is(err, context.DeadlineExceeded).
type LimitError struct {
	Limit Limit
	// Max is the limit: bytes for sizes and memory, nanoseconds for time and cpu time.
	Max int64
	// Got is the measured value when known (sizes), else 0.
	Got int64
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case LimitSourceSize:
		return fmt.Sprintf("source is %d bytes, over the %d-byte limit", e.Got, e.Max)
	case LimitOutputSize:
		if e.Got > 0 {
			return fmt.Sprintf("module is %d bytes, over the %d-byte limit", e.Got, e.Max)
		}
		return fmt.Sprintf("compiler output over the %d-byte limit", e.Max)
	case LimitTime:
		return fmt.Sprintf("build timed out after %s", time.Duration(e.Max))
	case LimitCPU:
		return fmt.Sprintf("compiler exceeded its cpu time limit of %s", time.Duration(e.Max))
	case LimitMemory:
		return fmt.Sprintf("compiler ran out of memory (limit %d MiB)", e.Max>>20)
	}
	return "build limit exceeded: " + string(e.Limit)
}

// Unwrap makes a timeout match context.DeadlineExceeded.
func (e *LimitError) Unwrap() error {
	if e.Limit == LimitTime {
		return context.DeadlineExceeded
	}
	return nil
}

// ToolchainError means the builder cannot run a toolchain: it is not installed
// (Missing, with the command that installs it in Install) or it failed in a way
// that is not a diagnostic about the source (a crash, a broken installation).
// It is the builder's problem, not the user's: retry elsewhere or alert.
type ToolchainError struct {
	Tool string
	// Install is how to install the tool, e.g. "apt-get install clang-19".
	Install string
	Missing bool
	Err     error
	// Log is the tail of the tool's output, if it ran.
	Log string
}

func (e *ToolchainError) Error() string {
	if e.Missing {
		return fmt.Sprintf("toolchain not installed: %s: %s", e.Tool, e.Install)
	}
	if e.Err != nil {
		return fmt.Sprintf("toolchain %s failed: %v", e.Tool, e.Err)
	}
	return fmt.Sprintf("toolchain %s failed", e.Tool)
}

func (e *ToolchainError) Unwrap() error { return e.Err }

// IsUserError reports whether err is the application's fault (bad source,
// limits exceeded, a bad request) rather than the builder's: the compile function
// answers those with build.failed instead of a retry.
func IsUserError(err error) bool {
	var ce *CompileError
	var le *LimitError
	return errors.As(err, &ce) || errors.As(err, &le) ||
		errors.Is(err, ErrUnknownLanguage) || errors.Is(err, ErrEmptySource) || errors.Is(err, ErrInvalidRequest)
}
