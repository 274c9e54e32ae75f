package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// RequireEnv is the environment variable that turns skips into failures.
const RequireEnv = "NODEKIT_REQUIRE_INTEGRATION"

// Skip skips the test with reason, or fails it when integration tests are required.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("integration test cannot run (%s=1 requires it): %s", RequireEnv, reason)
	}
	t.Skip("integration test skipped: " + reason)
}

// RequireRoot skips unless the test runs as root on Linux, and in -short mode
// (`make unit`), which runs unit tests only.
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	if runtime.GOOS != "linux" {
		Skip(t, "needs Linux")
	}
	if os.Geteuid() != 0 {
		Skip(t, "needs root (real runc, overlayfs, namespaces and cgroups); run `sudo make test`")
	}
}

// ModuleRoot returns the directory holding go.mod, found upward from the test's
// working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Binary returns the path of a binary built by `make build` (NODEKIT_BIN_DIR, or
// bin/ at the module root), skipping when it is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("NODEKIT_BIN_DIR")
	if dir == "" {
		dir = filepath.Join(ModuleRoot(t), "bin")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		Skip(t, name+" not built at "+p+"; run `make build`")
	}
	return p
}

// LookPath returns the path of a host command, skipping when it is missing.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, name+" not installed; run `sudo make setup`")
	}
	return p
}

// Image returns the path of a sample image archive built by `make images`
// (_output/images/NAME.tar at the module root), skipping when it is missing.
func Image(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(ModuleRoot(t), "_output", "images", name+".tar")
	if _, err := os.Stat(p); err != nil {
		Skip(t, "image archive "+p+" missing; run `make images`")
	}
	return p
}

// TempDir creates a directory for the test with a short path (os.TempDir()/
// prefix<random>: unix socket paths are limited to 108 bytes), searchable by
// others (0711, as /run/nodekit: root of a pod's user namespace must reach the
// pod's directories), and removes it at cleanup, after the cleanups registered
// later.
func TempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// LogBuffer collects the logs of what a test runs in the background (a shim, an
// agent) for the test to print when it failed: t.Log cannot be used, as
// goroutines may log after the test returned. It is safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
