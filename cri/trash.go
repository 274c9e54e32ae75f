package cri

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// trashDir is where a directory of the root or the state directory goes to be
// deleted: on the same filesystem, so moving it there is a rename.
func (s *Server) trashDir(dir string) string {
	if strings.HasPrefix(dir, s.paths.state+string(filepath.Separator)) {
		return filepath.Join(s.paths.state, "trash")
	}
	return filepath.Join(s.paths.root, "trash")
}

// trash moves dir out of the way at once and deletes it in the background (with
// the server's background work: Close waits for it). A missing dir is not an
// error; where the rename fails, dir is deleted in place.
func (s *Server) trash(dir string) error {
	bin := s.trashDir(dir)
	if err := os.MkdirAll(bin, 0o700); err != nil {
		return os.RemoveAll(dir)
	}
	var b [6]byte
	rand.Read(b[:])
	target := filepath.Join(bin, filepath.Base(dir)+"-"+hex.EncodeToString(b[:]))
	if err := os.Rename(dir, target); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return os.RemoveAll(dir)
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := os.RemoveAll(target); err != nil {
			s.log.Warn("delete a removed container's files", "dir", target, "err", err)
		}
	}()
	return nil
}

// emptyTrash deletes, in the background, what a previous run left in the trash.
func (s *Server) emptyTrash() {
	for _, bin := range []string{filepath.Join(s.paths.root, "trash"), filepath.Join(s.paths.state, "trash")} {
		entries, err := os.ReadDir(bin)
		if err != nil {
			continue
		}
		for _, e := range entries {
			p := filepath.Join(bin, e.Name())
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				os.RemoveAll(p)
			}()
		}
	}
}
