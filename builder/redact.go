package builder

import (
	"path"
	"regexp"
	"strings"
)

// Compiler output reaches the user (diagnostics, build logs). It never quotes a
// file outside the build directory: such paths are replaced, and a diagnostic
// located in such a file keeps only its severity, so that no line of the file
// is shown.
const (
	// redactedPath replaces a path outside the build directory.
	redactedPath = "<outside the build directory>"
	// redactedMessage replaces the message of a diagnostic located outside it.
	redactedMessage = "in a file outside the build directory (redacted)"
)

// inBuildDir reports whether a file named in compiler output (relative to the
// build directory, or absolute inside the sandbox) is in the build directory.
func inBuildDir(name string) bool {
	if !path.IsAbs(name) {
		name = path.Join(sandboxDir, name)
	}
	name = path.Clean(name)
	return name == sandboxDir || strings.HasPrefix(name, sandboxDir+"/")
}

// localName names a file in the build directory relative to it: "/build/main.c"
// and "./main.c" are "main.c".
func localName(name string) string {
	if rest, ok := strings.CutPrefix(path.Clean(name), sandboxDir+"/"); ok {
		return rest
	}
	return strings.TrimPrefix(name, "./")
}

var (
	// pathRE finds path-like words: file-name characters with slashes between them.
	pathRE = regexp.MustCompile(`[A-Za-z0-9_.@+~-]*(?:/[A-Za-z0-9_.@+~-]+)+/?`)
	// urlRE matches the text before the path of a URL ("https:/" of "https://host/path").
	urlRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*:/$`)
)

// redactPaths replaces the paths outside the build directory in s, and names the
// ones inside it relative to it. URLs ("https://...") are kept.
func redactPaths(s string) string {
	locs := pathRE.FindAllStringIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		word := s[l[0]:l[1]]
		if urlRE.MatchString(s[max(0, l[0]-32):l[0]]) {
			continue
		}
		b.WriteString(s[last:l[0]])
		switch {
		case !inBuildDir(word):
			b.WriteString(redactedPath)
		case path.IsAbs(word):
			b.WriteString(localName(word))
		default:
			b.WriteString(word)
		}
		last = l[1]
	}
	b.WriteString(s[last:])
	return b.String()
}
