package testrootfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

func TestBusybox(t *testing.T) {
	testenv.LookPath(t, "busybox")
	root := t.TempDir()
	Busybox(t, root, "sh", "echo")
	for _, a := range []string{"sh", "echo"} {
		if target, err := os.Readlink(filepath.Join(root, "bin", a)); err != nil || target != "busybox" {
			t.Errorf("bin/%s -> %q (%v), want busybox", a, target, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "bin", "cat")); !os.IsNotExist(err) {
		t.Errorf("bin/cat exists although not asked for (%v)", err)
	}
	out, err := exec.Command(filepath.Join(root, "bin", "echo"), "hi").Output()
	if err != nil || string(out) != "hi\n" {
		t.Errorf("bin/echo hi: %q %v", out, err)
	}

	all := t.TempDir()
	Busybox(t, all)
	if _, err := os.Lstat(filepath.Join(all, "bin", "sleep")); err != nil {
		t.Errorf("every applet: %v", err)
	}
}
