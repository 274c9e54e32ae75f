package rundir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Dir is a run's workspace.
type Dir struct {
	Path   string // /tmp/<prefix><id>
	ID     string
	Cgroup string // /<prefix><id>, relative to each cgroup hierarchy's root
}

// base is where workspaces are created; a variable for the tests.
var base = "/tmp"

// New creates a new workspace directory /tmp/<prefix><random id> with mode
// (0o711 lets the containers' users reach their files below it).
func New(prefix string, mode fs.FileMode) (Dir, error) {
	path, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return Dir{}, fmt.Errorf("create the workspace: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		os.Remove(path)
		return Dir{}, fmt.Errorf("create the workspace: %w", err)
	}
	return of(path, prefix, strings.TrimPrefix(filepath.Base(path), prefix)), nil
}

// Existing is the workspace at path of an earlier run (one killed before it
// cleaned up), or an error when path is not /tmp/<prefix><id>.
func Existing(path, prefix string) (Dir, error) {
	path = filepath.Clean(path)
	id, ok := strings.CutPrefix(path, filepath.Join(base, prefix))
	if !ok || id == "" || strings.Contains(id, "/") {
		return Dir{}, fmt.Errorf("%s: not a benchmark workspace (%s<id>)", path, filepath.Join(base, prefix))
	}
	return of(path, prefix, id), nil
}

func of(path, prefix, id string) Dir {
	return Dir{Path: path, ID: id, Cgroup: "/" + prefix + id}
}

// Join is the path of elem below the workspace.
func (d Dir) Join(elem ...string) string {
	return filepath.Join(append([]string{d.Path}, elem...)...)
}

// Remove removes the workspace directory at path and everything in it (its
// mounts must be gone), the last step of a cleanup, and says what it did.
func Remove(path string, say func(format string, args ...any)) {
	if err := os.RemoveAll(path); err != nil {
		say("remove %s: %v", path, err)
	} else {
		say("removed %s", path)
	}
}
