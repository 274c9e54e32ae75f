//go:build linux

package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/internal/ctxio"
	"github.com/nodekit-dev/nodekit/internal/diskusage"
)

// noOpenat2 is set once openat2 turns out to be unavailable (old kernel, seccomp); the
// component walk is used from then on.
var noOpenat2 atomic.Bool

// Apply unpacks the uncompressed layer tar stream r into dir, which must exist and be
// empty. Whiteouts are written in overlayfs form so dir can be used directly as an
// overlay lowerdir.
//
// Apply reads r to its end, also past the tar end-of-archive marker, so that a caller
// hashing the stream (to check a diffID) sees all of it.
//
// On error dir is left partly written: the caller removes it. Unsafe entries are
// reported as *UnsafeEntryError and nothing is ever written outside dir.
//
// Extended attributes come from PAX records (SCHILY.xattr.*). trusted.overlay.* ones are
// dropped: only whiteouts may steer overlayfs. An attribute the kernel refuses with
// EPERM, EACCES or ENOTSUP (security.* or trusted.* when not privileged, user.* on a
// symlink or on a filesystem without support) is skipped with a warning; other failures
// are errors. Setting attributes needs /proc mounted.
func Apply(ctx context.Context, dir string, r io.Reader, opts Options) (Stats, error) {
	rootFD, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, fmt.Errorf("layer: open %s: %w", dir, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(rootFD)

	a := &applier{
		root:    rootFD,
		opts:    opts,
		chown:   !opts.IgnoreOwnership && os.Geteuid() == 0,
		written: map[string]bool{},
		dirs:    map[string]*tar.Header{},
		log:     opts.Logger,
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	cr := ctxio.NewReader(ctx, r)
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return Stats{}, fmt.Errorf("layer: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Stats{}, fmt.Errorf("layer: read tar: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return Stats{}, err
		}
	}
	if err := a.finishDirs(); err != nil {
		return Stats{}, err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return Stats{}, fmt.Errorf("layer: read tar trailer: %w", err)
	}
	return usage(dir)
}

type applier struct {
	root    int // O_PATH fd of the layer directory
	opts    Options
	chown   bool
	written map[string]bool        // non-directory paths created by this layer (hard link targets)
	dirs    map[string]*tar.Header // directory metadata applied once all content is written
	log     *slog.Logger
}

func unsafeEntry(hdr *tar.Header, reason string) error {
	return &UnsafeEntryError{Entry: hdr.Name, Reason: reason}
}

func entryErr(hdr *tar.Header, op string, err error) error {
	return fmt.Errorf("layer entry %q: %s: %w", hdr.Name, op, err)
}

func (a *applier) entry(hdr *tar.Header, body io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock:
		if !a.opts.AllowDevices {
			return unsafeEntry(hdr, reasonDevice)
		}
	}
	name, reason := cleanName(hdr.Name)
	if reason != "" {
		return unsafeEntry(hdr, reason)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return unsafeEntry(hdr, reasonRoot)
		}
		if err := a.chownAt(a.root, ".", hdr); err != nil {
			return err
		}
		if err := a.setXattrs(a.root, "", hdr); err != nil {
			return err
		}
		a.dirs["."] = hdr
		return nil
	}
	parent, base := path.Split(name)
	parent = path.Clean(parent)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(hdr, parent, base)
	}

	pfd, err := a.openDir(hdr, parent, true, reasonParentSymlink)
	if err != nil {
		return err
	}
	defer a.closeDir(pfd)

	if hdr.Typeflag == tar.TypeDir {
		return a.mkdir(hdr, pfd, name, base)
	}
	if hdr.Typeflag == tar.TypeLink {
		return a.hardlink(hdr, pfd, name, base)
	}
	if err := a.replace(hdr, pfd, name, base); err != nil {
		return err
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeReg:
		if err := a.writeFile(hdr, pfd, base, body, mode); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return entryErr(hdr, "symlink", err)
		}
		if err := a.chownAt(pfd, base, hdr); err != nil {
			return err
		}
	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		kind := uint32(unix.S_IFIFO)
		if hdr.Typeflag == tar.TypeChar {
			kind = unix.S_IFCHR
		} else if hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|mode, int(dev)); err != nil {
			return entryErr(hdr, "mknod", err)
		}
		if err := a.chownAt(pfd, base, hdr); err != nil {
			return err
		}
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return entryErr(hdr, "chmod", err)
		}
	default:
		return fmt.Errorf("layer entry %q: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
	}
	if err := a.setXattrs(pfd, base, hdr); err != nil {
		return err
	}
	if err := setTimes(pfd, base, hdr); err != nil {
		return entryErr(hdr, "set times", err)
	}
	a.written[name] = true
	return nil
}

func (a *applier) writeFile(hdr *tar.Header, pfd int, base string, body io.Reader, mode uint32) error {
	fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return entryErr(hdr, "create", err)
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	if _, err := io.Copy(f, body); err != nil {
		return entryErr(hdr, "write", err)
	}
	if a.chown {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			return entryErr(hdr, "chown", err)
		}
	}
	// After chown, which clears setuid/setgid.
	if err := unix.Fchmod(fd, mode); err != nil {
		return entryErr(hdr, "chmod", err)
	}
	if err := f.Close(); err != nil {
		return entryErr(hdr, "close", err)
	}
	return nil
}

func (a *applier) mkdir(hdr *tar.Header, pfd int, name, base string) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		// An existing directory is kept with its content; its metadata is replaced.
	case err == nil || errors.Is(err, unix.ENOENT):
		if err := a.replace(hdr, pfd, name, base); err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return entryErr(hdr, "mkdir", err)
		}
	default:
		return entryErr(hdr, "stat", err)
	}
	if err := a.chownAt(pfd, base, hdr); err != nil {
		return err
	}
	if err := a.setXattrs(pfd, base, hdr); err != nil {
		return err
	}
	delete(a.written, name)
	a.dirs[name] = hdr
	return nil
}

func (a *applier) hardlink(hdr *tar.Header, pfd int, name, base string) error {
	target, reason := cleanName(hdr.Linkname)
	switch {
	case reason == reasonEscape || reason == reasonAbsolute:
		return unsafeEntry(hdr, reasonLinkEscape)
	case reason != "" || target == ".":
		return unsafeEntry(hdr, reasonLinkAbsent)
	}
	tparent, tbase := path.Split(target)
	tpfd, err := a.openDir(hdr, path.Clean(tparent), false, reasonLinkSymlink)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return unsafeEntry(hdr, reasonLinkAbsent)
		}
		return err
	}
	defer a.closeDir(tpfd)
	if !a.written[target] {
		return unsafeEntry(hdr, reasonLinkAbsent)
	}
	if target == name {
		return nil // a link to itself: nothing to do
	}
	if err := a.replace(hdr, pfd, name, base); err != nil {
		return err
	}
	if err := unix.Linkat(tpfd, tbase, pfd, base, 0); err != nil {
		return entryErr(hdr, "link to "+strconv.Quote(hdr.Linkname), err)
	}
	a.written[name] = true
	return nil
}

// whiteout writes the overlayfs form of an OCI whiteout entry.
func (a *applier) whiteout(hdr *tar.Header, parent, base string) error {
	if base == whiteoutOpaque {
		dfd, err := a.openDir(hdr, parent, true, reasonParentSymlink)
		if err != nil {
			return err
		}
		defer a.closeDir(dfd)
		p := "/proc/self/fd/" + strconv.Itoa(dfd)
		if err := unix.Setxattr(p, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return entryErr(hdr, "mark directory opaque (trusted.overlay.opaque)", err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other AUFS metadata entries carry nothing for overlayfs
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return unsafeEntry(hdr, reasonWhiteout)
	}
	pfd, err := a.openDir(hdr, parent, true, reasonParentSymlink)
	if err != nil {
		return err
	}
	defer a.closeDir(pfd)
	if err := a.replace(hdr, pfd, path.Join(parent, target), target); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
		return entryErr(hdr, "mknod whiteout", err)
	}
	return nil
}

// replace removes whatever exists at base in pfd (tar semantics: a later entry replaces
// an earlier one) and forgets what this layer wrote there.
func (a *applier) replace(hdr *tar.Header, pfd int, name, base string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return entryErr(hdr, "stat", err)
	}
	if err := removeAt(pfd, base, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
		return entryErr(hdr, "replace existing entry", err)
	}
	prefix := name + "/"
	for p := range a.written {
		if p == name || strings.HasPrefix(p, prefix) {
			delete(a.written, p)
		}
	}
	for p := range a.dirs {
		if p == name || strings.HasPrefix(p, prefix) {
			delete(a.dirs, p)
		}
	}
	return nil
}

// removeAt removes base in dirfd, recursively when it is a directory, never following
// symbolic links.
func removeAt(dirfd int, base string, isDir bool) error {
	if !isDir {
		return unix.Unlinkat(dirfd, base, 0)
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), base)
	defer d.Close()
	for {
		ents, err := d.ReadDir(256)
		for _, e := range ents {
			if err := removeAt(fd, e.Name(), e.IsDir()); err != nil {
				return err
			}
		}
		if err == io.EOF || len(ents) == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	return unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
}

// openDir opens the directory rel (clean, relative, "." for the root) beneath the layer
// root without following symbolic links, creating missing components (mode 0755) when
// create is set. A symbolic link on the way is an *UnsafeEntryError with symlinkReason.
// The returned fd must be released with closeDir.
func (a *applier) openDir(hdr *tar.Header, rel string, create bool, symlinkReason string) (int, error) {
	if rel == "." {
		return a.root, nil
	}
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(a.root, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == nil {
			return fd, nil
		}
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			noOpenat2.Store(true)
		}
		// Otherwise (missing component, symlink, not a directory) the walk below creates
		// what is missing and says precisely what is wrong.
	}
	return a.walkDir(hdr, rel, create, symlinkReason)
}

// walkDir is openDir one component at a time with openat(O_NOFOLLOW).
func (a *applier) walkDir(hdr *tar.Header, rel string, create bool, symlinkReason string) (int, error) {
	fd := a.root
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		next, err := openDirAt(fd, c)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				if err == nil {
					err = unix.Fchmodat(fd, c, 0o755, 0) // undo the umask
				}
				if err == nil {
					next, err = openDirAt(fd, c)
				}
			}
		}
		if err != nil {
			var st unix.Stat_t
			if serr := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unsafeEntry(hdr, symlinkReason+" ("+strings.Join(comps[:i+1], "/")+")")
			} else {
				err = fmt.Errorf("layer entry %q: open directory %q: %w", hdr.Name, strings.Join(comps[:i+1], "/"), err)
			}
		}
		a.closeDir(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func openDirAt(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

func (a *applier) closeDir(fd int) {
	if fd >= 0 && fd != a.root {
		unix.Close(fd)
	}
}

func (a *applier) chownAt(pfd int, base string, hdr *tar.Header) error {
	if !a.chown {
		return nil
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryErr(hdr, "chown", err)
	}
	return nil
}

const paxXattr = "SCHILY.xattr."

// setXattrs sets the entry's extended attributes on base in pfd ("" means pfd itself).
func (a *applier) setXattrs(pfd int, base string, hdr *tar.Header) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	p := "/proc/self/fd/" + strconv.Itoa(pfd)
	set := unix.Setxattr // follows the /proc magic link to pfd itself
	if base != "" {
		p += "/" + base
		set = unix.Lsetxattr
	}
	for _, k := range keys {
		attr := strings.TrimPrefix(k, paxXattr)
		if strings.HasPrefix(attr, "trusted.overlay.") {
			a.log.Warn("layer: dropping overlayfs attribute from tar entry", "entry", hdr.Name, "xattr", attr)
			continue
		}
		err := set(p, attr, []byte(hdr.PAXRecords[k]), 0)
		switch {
		case err == nil:
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOTSUP):
			a.log.Warn("layer: skipping extended attribute", "entry", hdr.Name, "xattr", attr, "err", err)
		default:
			return entryErr(hdr, "set xattr "+attr, err)
		}
	}
	return nil
}

func setTimes(pfd int, base string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// finishDirs applies directory modes and times after all content is written (writing
// into a directory changes its mtime; a read-only mode would block writes).
func (a *applier) finishDirs() error {
	names := make([]string, 0, len(a.dirs))
	for n := range a.dirs {
		names = append(names, n)
	}
	// Deepest first.
	sort.Slice(names, func(i, j int) bool {
		return strings.Count(names[i], "/") > strings.Count(names[j], "/") ||
			(strings.Count(names[i], "/") == strings.Count(names[j], "/") && names[i] < names[j])
	})
	for _, n := range names {
		hdr := a.dirs[n]
		parent, base := path.Split(n)
		if n == "." {
			parent, base = ".", "."
		}
		pfd, err := a.openDir(hdr, path.Clean(parent), false, reasonParentSymlink)
		if err != nil {
			return err
		}
		// Never chmod through a symlink: check what is there now.
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			err = fmt.Errorf("no longer a directory")
		}
		if err == nil {
			err = unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0)
		}
		if err == nil {
			err = setTimes(pfd, base, hdr)
		}
		a.closeDir(pfd)
		if err != nil {
			return entryErr(hdr, "set directory mode and times", err)
		}
	}
	return nil
}

// usage measures what lies under dir: allocated bytes and inodes, hard links once.
func usage(dir string) (Stats, error) {
	u, err := diskusage.MeasureStrict(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("layer: measure %s: %w", dir, err)
	}
	return Stats{Bytes: int64(u.Bytes), Inodes: int64(u.Inodes)}, nil
}
