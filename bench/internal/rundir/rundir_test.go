package rundir

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// inTemp makes the workspaces of the test under its own temp dir.
func inTemp(t *testing.T) string {
	t.Helper()
	old := base
	base = t.TempDir()
	t.Cleanup(func() { base = old })
	return base
}

func TestNew(t *testing.T) {
	root := inTemp(t)
	d, err := New("nktest-", 0o711)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || d.Path != filepath.Join(root, "nktest-"+d.ID) || d.Cgroup != "/nktest-"+d.ID {
		t.Errorf("New = %+v", d)
	}
	fi, err := os.Stat(d.Path)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o711 {
		t.Fatalf("workspace directory: %v, %v", fi, err)
	}
	if got := d.Join("run", "x.sock"); got != filepath.Join(d.Path, "run", "x.sock") {
		t.Errorf("Join = %s", got)
	}
	other, err := New("nktest-", 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == d.ID {
		t.Errorf("two workspaces with id %s", d.ID)
	}

	again, err := Existing(d.Path+"/", "nktest-")
	if err != nil || again != d {
		t.Errorf("Existing(%s/) = %+v, %v; want %+v", d.Path, again, err, d)
	}
}

func TestExisting(t *testing.T) {
	for path, want := range map[string]string{
		"/tmp/nkbench-123": "123", "/tmp/nkbench-123/": "123", "/tmp//nkbench-a1": "a1",
		"/tmp/nkbench-": "", "/tmp/nkbench-1/x": "", "/var/tmp/nkbench-1": "", "/tmp/nkagent-1": "", "nkbench-1": "",
	} {
		d, err := Existing(path, "nkbench-")
		if d.ID != want || (err == nil) != (want != "") {
			t.Errorf("Existing(%q) = %+v, %v; want id %q", path, d, err, want)
		}
		if err == nil && (d.Path != "/tmp/nkbench-"+want || d.Cgroup != "/nkbench-"+want) {
			t.Errorf("Existing(%q) = %+v", path, d)
		}
	}
	if _, err := Existing("/tmp/x", "nkagent-"); err == nil || err.Error() != "/tmp/x: not a benchmark workspace (/tmp/nkagent-<id>)" {
		t.Errorf("Existing error: %v", err)
	}
}

func TestRemove(t *testing.T) {
	inTemp(t)
	d, err := New("nktest-", 0o711)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d.Join("a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	var said []string
	say := func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }
	Remove(d.Path, say)
	if _, err := os.Stat(d.Path); !os.IsNotExist(err) {
		t.Errorf("the workspace is still there: %v", err)
	}
	if want := "removed " + d.Path; len(said) != 1 || said[0] != want {
		t.Errorf("said %q, want %q", said, want)
	}
}
