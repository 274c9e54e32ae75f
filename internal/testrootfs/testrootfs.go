package testrootfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// Busybox installs the host's busybox as root/bin/busybox, creating root/bin,
// with a symlink in root/bin for each of applets, or for every applet the
// binary has when none is named. It skips when busybox is not installed.
// Nothing needs cleaning up beyond root, which the caller owns.
func Busybox(t testing.TB, root string, applets ...string) {
	t.Helper()
	bb := testenv.LookPath(t, "busybox")
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if len(applets) == 0 {
		out, err := exec.Command(bb, "--list").Output()
		if err != nil {
			t.Fatalf("busybox --list: %v", err)
		}
		applets = strings.Fields(string(out))
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(bin, a)); err != nil {
			t.Fatal(err)
		}
	}
}
