package cri

import "os"

func mkdirAll(p string) error { return os.MkdirAll(p, 0o755) }

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
