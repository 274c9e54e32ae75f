package atomicwriter

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
	maxPathLength  = 4096
	maxFileLength  = 255
)

// File is one file of a payload: its content and permission bits.
type File struct {
	Data []byte
	Mode fs.FileMode
}

// Writer writes payloads into one directory.
type Writer struct {
	dir     string
	now     func() time.Time
	fsGroup *int64
}

// New returns a Writer for dir, which is created if needed.
func New(dir string) *Writer { return &Writer{dir: dir, now: time.Now} }

// WithFSGroup makes every file and directory written group-owned by gid, as the
// kubelet's volume ownership for a pod's fsGroup: files get group read (mode |
// 0440), directories group read and search and the setgid bit. It is applied
// to a new version before ..data switches to it, so a reader in the group never
// sees a file it cannot read. Nil leaves ownership alone.
func (w *Writer) WithFSGroup(gid *int64) *Writer {
	w.fsGroup = gid
	return w
}

// fileMode is the mode a payload file gets.
func (w *Writer) fileMode(f File) fs.FileMode {
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if w.fsGroup != nil {
		mode |= 0o440
	}
	return mode.Perm()
}

// own gives path (not following a symlink) to the fsGroup.
func (w *Writer) own(path string, d fs.DirEntry) error {
	if w.fsGroup == nil {
		return nil
	}
	if err := os.Lchown(path, -1, int(*w.fsGroup)); err != nil {
		return err
	}
	if d != nil && d.IsDir() {
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(path, info.Mode().Perm()|0o550|os.ModeSetgid)
	}
	return nil
}

// Write makes dir hold exactly payload (relative slash-separated paths), as one
// atomic switch. An unchanged payload writes nothing; it reports whether
// anything changed. A bad path is refused, naming it, before anything is written.
func (w *Writer) Write(payload map[string]File) (changed bool, err error) {
	for p := range payload {
		if err := validatePath(p); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return false, fmt.Errorf("atomic writer: %w", err)
	}
	oldTS, err := os.Readlink(filepath.Join(w.dir, dataDirName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("atomic writer: read %s: %w", dataDirName, err)
	}
	if oldTS != "" && w.same(filepath.Join(w.dir, oldTS), payload) {
		return false, nil
	}

	// 1. The new version in a directory of its own.
	tsDir, err := os.MkdirTemp(w.dir, w.now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, fmt.Errorf("atomic writer: %w", err)
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		os.RemoveAll(tsDir)
		return false, fmt.Errorf("atomic writer: %w", err)
	}
	tsName := filepath.Base(tsDir)
	for _, p := range slices.Sorted(maps.Keys(payload)) {
		f := payload[p]
		full := filepath.Join(tsDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			os.RemoveAll(tsDir)
			return false, fmt.Errorf("atomic writer: %s: %w", p, err)
		}
		mode := w.fileMode(f)
		if err := os.WriteFile(full, f.Data, mode); err != nil {
			os.RemoveAll(tsDir)
			return false, fmt.Errorf("atomic writer: %s: %w", p, err)
		}
		// WriteFile's mode is filtered by the umask: set it as asked.
		if err := os.Chmod(full, mode); err != nil {
			os.RemoveAll(tsDir)
			return false, fmt.Errorf("atomic writer: %s: %w", p, err)
		}
	}

	if w.fsGroup != nil {
		if err := w.own(w.dir, dirEntry(w.dir)); err != nil {
			os.RemoveAll(tsDir)
			return false, fmt.Errorf("atomic writer: fsGroup: %w", err)
		}
		if err := filepath.WalkDir(tsDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return w.own(path, d)
		}); err != nil {
			os.RemoveAll(tsDir)
			return false, fmt.Errorf("atomic writer: fsGroup: %w", err)
		}
	}

	// 2. ..data switches to it in one rename.
	tmpLink := filepath.Join(w.dir, newDataDirName)
	os.Remove(tmpLink)
	if err := os.Symlink(tsName, tmpLink); err != nil {
		os.RemoveAll(tsDir)
		return false, fmt.Errorf("atomic writer: %w", err)
	}
	if err := w.own(tmpLink, nil); err != nil {
		os.Remove(tmpLink)
		os.RemoveAll(tsDir)
		return false, fmt.Errorf("atomic writer: fsGroup: %w", err)
	}
	if err := os.Rename(tmpLink, filepath.Join(w.dir, dataDirName)); err != nil {
		os.Remove(tmpLink)
		os.RemoveAll(tsDir)
		return false, fmt.Errorf("atomic writer: switch %s: %w", dataDirName, err)
	}

	// 3. The visible names: one symlink per top-level name into ..data.
	want := map[string]bool{}
	for p := range payload {
		top, _, _ := strings.Cut(p, "/")
		want[top] = true
	}
	for top := range want {
		link := filepath.Join(w.dir, top)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataDirName, top) {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, top), link); err != nil {
			return true, fmt.Errorf("atomic writer: %s: %w", top, err)
		}
		if err := w.own(link, nil); err != nil {
			return true, fmt.Errorf("atomic writer: fsGroup: %w", err)
		}
	}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return true, fmt.Errorf("atomic writer: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") {
			// A version a writer killed mid-write left behind goes too.
			if e.IsDir() && name != tsName && name != oldTS {
				if err := os.RemoveAll(filepath.Join(w.dir, name)); err != nil {
					return true, fmt.Errorf("atomic writer: remove the stale version %s: %w", name, err)
				}
			}
			continue
		}
		if !want[name] && e.Type()&fs.ModeSymlink != 0 {
			if err := os.Remove(filepath.Join(w.dir, name)); err != nil {
				return true, fmt.Errorf("atomic writer: remove %s: %w", name, err)
			}
		}
	}

	// 4. The old version goes.
	if oldTS != "" && oldTS != tsName {
		if err := os.RemoveAll(filepath.Join(w.dir, oldTS)); err != nil {
			return true, fmt.Errorf("atomic writer: remove the old version: %w", err)
		}
	}
	return true, nil
}

// same reports whether the version in dir holds exactly payload.
func (w *Writer) same(dir string, payload map[string]File) bool {
	n := 0
	equal := true
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		f, ok := payload[filepath.ToSlash(rel)]
		if !ok {
			equal = false
			return filepath.SkipAll
		}
		n++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if w.fsGroup != nil {
			if st, ok := info.Sys().(*syscall.Stat_t); !ok || int64(st.Gid) != *w.fsGroup {
				equal = false
				return filepath.SkipAll
			}
		}
		data, err := os.ReadFile(path)
		if err != nil || info.Mode().Perm() != w.fileMode(f) || !bytes.Equal(data, f.Data) {
			equal = false
			return filepath.SkipAll
		}
		return nil
	})
	return err == nil && equal && n == len(payload)
}

// dirEntry describes an existing directory for own.
func dirEntry(path string) fs.DirEntry {
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	return fs.FileInfoToDirEntry(info)
}

// validatePath refuses what could escape the directory or clash with the layout:
// absolute paths, "..", names starting with "..", empty elements, over-long paths.
func validatePath(p string) error {
	switch {
	case p == "":
		return errors.New("atomic writer: empty path")
	case len(p) > maxPathLength:
		return fmt.Errorf("atomic writer: path %q: longer than %d", p, maxPathLength)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("atomic writer: path %q: must be relative", p)
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("atomic writer: path %q: must not start with '..'", p)
	}
	for _, e := range strings.Split(p, "/") {
		switch {
		case e == "" || e == ".":
			return fmt.Errorf("atomic writer: path %q: empty element", p)
		case e == "..":
			return fmt.Errorf("atomic writer: path %q: must not contain '..'", p)
		case len(e) > maxFileLength:
			return fmt.Errorf("atomic writer: path %q: element longer than %d", p, maxFileLength)
		}
	}
	return nil
}
