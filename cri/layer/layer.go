package layer

import (
	"fmt"
	"log/slog"
	"path"
	"strings"
)

// Options tune Apply.
type Options struct {
	// AllowDevices permits character and block device nodes. By default they are
	// rejected with an *UnsafeEntryError. Overlay whiteouts (0:0 character devices made
	// from ".wh." entries) are always written.
	AllowDevices bool
	// IgnoreOwnership leaves every entry owned by the caller. Ownership from the tar
	// headers is applied only when running as root; otherwise it is ignored anyway.
	IgnoreOwnership bool
	// Logger receives warnings about extended attributes that could not be set.
	// Nil means slog.Default().
	Logger *slog.Logger
}

// Stats is the disk usage of what Apply wrote: bytes allocated (st_blocks*512) and
// inodes, each hard-linked inode counted once, the root directory included.
type Stats struct {
	Bytes, Inodes int64
}

// UnsafeEntryError reports a tar entry that Apply refused to write.
type UnsafeEntryError struct {
	Entry  string // the entry name as it appears in the tar header
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("layer entry %q: %s", e.Entry, e.Reason)
}

// Reasons used in UnsafeEntryError.
const (
	reasonEscape        = "path escapes the layer root"
	reasonAbsolute      = "absolute path"
	reasonEmpty         = "empty name"
	reasonRoot          = "non-directory entry names the layer root"
	reasonParentSymlink = "parent path goes through a symlink"
	reasonLinkEscape    = "hard link target escapes the layer root"
	reasonLinkAbsent    = "hard link target is absent from this layer"
	reasonLinkSymlink   = "hard link target goes through a symlink"
	reasonDevice        = "device node not allowed"
	reasonWhiteout      = "invalid whiteout name"
)

// Whiteout names (OCI image spec, "Representing Changes").
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// cleanName turns a tar entry name into a clean path relative to the layer root, or
// explains why it cannot be one. "." is the root itself.
func cleanName(raw string) (string, string) {
	if raw == "" {
		return "", reasonEmpty
	}
	if strings.HasPrefix(raw, "/") {
		return "", reasonAbsolute
	}
	c := path.Clean(raw)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", reasonEscape
	}
	return c, ""
}
