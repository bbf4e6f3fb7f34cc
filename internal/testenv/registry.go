package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Registry is a distribution (OCI) registry process serving plain HTTP on loopback.
type Registry struct {
	// Host is its address, 127.0.0.1:<port>, as OCI references write it.
	Host string
	// Root is its filesystem storage.
	Root string
}

// StartRegistry runs the registry binary named by WASMBED_REGISTRY_BIN with storage in
// a temporary directory, waits until /v2/ answers, and stops it when t ends. A
// non-empty htpasswd (bcrypt lines) makes the registry demand basic auth.
func StartRegistry(t testing.TB, htpasswd string) Registry {
	t.Helper()
	bin := os.Getenv("WASMBED_REGISTRY_BIN")
	if bin == "" {
		t.Fatal("WASMBED_REGISTRY_BIN is not set: build the registry once with hack/registry.sh, then run " +
			"WASMBED_REGISTRY_BIN=\"$(hack/registry.sh)\" go test ... (make test sets it)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("WASMBED_REGISTRY_BIN: %v (rebuild with hack/registry.sh)", err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "storage")
	authBlock := ""
	if htpasswd != "" {
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, []byte(htpasswd), 0o600); err != nil {
			t.Fatal(err)
		}
		authBlock = fmt.Sprintf("auth:\n  htpasswd:\n    realm: wasmbed-test\n    path: %s\n", path)
	}
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		host := freeAddr(t)
		config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, root, host, authBlock)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", cfgPath)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.Env = append(os.Environ(), "OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none")
		if err := cmd.Start(); err != nil {
			logFile.Close()
			t.Fatalf("start registry: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			logFile.Close()
			close(exited)
		}()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		if waitReady(host, htpasswd != "", exited) {
			t.Cleanup(stop)
			return Registry{Host: host, Root: root}
		}
		stop()
		b, _ := os.ReadFile(logPath)
		lastLog = string(b)
	}
	t.Fatalf("registry did not answer /v2/ after 3 starts; last log:\n%s", lastLog)
	return Registry{}
}

// waitReady polls /v2/ until it answers 200 (401 with auth), the process exits, or
// a deadline passes.
func waitReady(host string, withAuth bool, exited <-chan struct{}) bool {
	want := http.StatusOK
	if withAuth {
		want = http.StatusUnauthorized
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
