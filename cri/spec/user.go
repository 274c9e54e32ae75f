package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setUser resolves the process's uid, gid and additional gids, as containerd
// does: run_as_username, else run_as_user (each with run_as_group), else the
// image's User ("name", "uid", "uid:gid", "name:group", ...), else root.
// Names are looked up in the rootfs's /etc/passwd and /etc/group.
func setUser(p *specs.Process, in Input) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	r := &rootfsUsers{root: in.Rootfs}
	defer r.close()

	var (
		userPart, groupPart string
		userField           string // the CRI field a bad user string came from
	)
	switch {
	case sc.GetRunAsUsername() != "" && sc.GetRunAsUser() != nil:
		return fieldErr("linux.security_context.run_as_username", "only one of run_as_user and run_as_username may be set")
	case sc.GetRunAsUsername() != "":
		userPart, userField = sc.GetRunAsUsername(), "linux.security_context.run_as_username"
	case sc.GetRunAsUser() != nil:
		uid := sc.GetRunAsUser().GetValue()
		if uid < 0 || uid > math.MaxInt32 {
			return fieldErr("linux.security_context.run_as_user", "uid %d is outside [0, %d]", uid, math.MaxInt32)
		}
		userPart, userField = strconv.FormatInt(uid, 10), "linux.security_context.run_as_user"
	case sc.GetRunAsGroup() != nil:
		return fieldErr("linux.security_context.run_as_group", "run_as_group needs run_as_user or run_as_username")
	case in.Image.User != "":
		var ok bool
		userPart, groupPart, ok = strings.Cut(in.Image.User, ":")
		if strings.Contains(groupPart, ":") || (ok && (userPart == "" || groupPart == "")) {
			return fieldErr("image", "image config user %q is not user[:group]", in.Image.User)
		}
		userField = "image"
	default:
		userPart, userField = "0", "image"
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if g.GetValue() < 0 || g.GetValue() > math.MaxInt32 {
			return fieldErr("linux.security_context.run_as_group", "gid %d is outside [0, %d]", g.GetValue(), math.MaxInt32)
		}
		groupPart = strconv.FormatInt(g.GetValue(), 10)
	}

	var (
		uid, gid uint32
		username string // for /etc/group membership; "" when the uid has no passwd entry
	)
	if n, err := parseID(userPart); err == nil {
		uid = n
		u, found, err := r.lookupUser(func(u passwdEntry) bool { return u.uid == n })
		if err != nil {
			return err
		}
		if found {
			gid, username = u.gid, u.name
		} // an unknown uid runs with gid 0, no error (containerd, Docker)
	} else if errors.Is(err, strconv.ErrRange) {
		return fieldErr(userField, "uid %q is outside [0, %d]", userPart, math.MaxInt32)
	} else {
		u, found, err := r.lookupUser(func(u passwdEntry) bool { return u.name == userPart })
		if err != nil {
			return err
		}
		if !found {
			return fieldErr(userField, "user %q not found in the image's /etc/passwd", userPart)
		}
		uid, gid, username = u.uid, u.gid, u.name
	}
	if groupPart != "" {
		if n, err := parseID(groupPart); err == nil {
			gid = n
		} else if errors.Is(err, strconv.ErrRange) {
			return fieldErr(userField, "gid %q is outside [0, %d]", groupPart, math.MaxInt32)
		} else {
			g, found, err := r.lookupGroup(func(g groupEntry) bool { return g.name == groupPart })
			if err != nil {
				return err
			}
			if !found {
				return fieldErr(userField, "group %q not found in the image's /etc/group", groupPart)
			}
			gid = g.gid
		}
	}

	// Additional gids: the primary gid (so dropping it from the process's
	// groups is not a way around it), then with the Merge policy the groups
	// /etc/group lists the user in, then supplemental_groups.
	gids := []uint32{gid}
	policy := sc.GetSupplementalGroupsPolicy()
	switch policy {
	case runtime.SupplementalGroupsPolicy_Merge:
		if username != "" {
			groups, err := r.groupsOf(username)
			if err != nil {
				return err
			}
			gids = append(gids, groups...)
		}
	case runtime.SupplementalGroupsPolicy_Strict:
	default:
		return fieldErr("linux.security_context.supplemental_groups_policy", "unknown policy %d", policy)
	}
	for i, g := range sc.GetSupplementalGroups() {
		if g < 0 || g > math.MaxInt32 {
			return fieldErr(fmt.Sprintf("linux.security_context.supplemental_groups[%d]", i), "gid %d is outside [0, %d]", g, math.MaxInt32)
		}
		gids = append(gids, uint32(g))
	}
	slices.Sort(gids)
	p.User = specs.User{UID: uid, GID: gid, AdditionalGids: slices.Compact(gids)}
	return nil
}

// parseID parses a decimal uid or gid in [0, MaxInt32], runc's range.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err == nil && n > math.MaxInt32 {
		err = strconv.ErrRange
	}
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			err = ne.Err
		}
		return 0, err
	}
	return uint32(n), nil
}

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// rootfsUsers reads /etc/passwd and /etc/group of a rootfs, opening it lazily.
type rootfsUsers struct {
	root string
	r    *os.Root
}

func (u *rootfsUsers) close() {
	if u.r != nil {
		u.r.Close()
	}
}

// open opens name (like "/etc/passwd") inside the rootfs. A missing file is
// reported as fs.ErrNotExist.
func (u *rootfsUsers) open(name string) (*os.File, error) {
	if u.r == nil {
		r, err := os.OpenRoot(u.root)
		if err != nil {
			return nil, fmt.Errorf("open rootfs %s: %w", u.root, err)
		}
		u.r = r
	}
	resolved, err := resolveInRoot(u.r, name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in rootfs %s: %w", name, u.root, err)
	}
	f, err := u.r.Open(resolved)
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs %s: %w", name, u.root, err)
	}
	return f, nil
}

func (u *rootfsUsers) lookupUser(match func(passwdEntry) bool) (passwdEntry, bool, error) {
	f, err := u.open("/etc/passwd")
	if errors.Is(err, fs.ErrNotExist) {
		return passwdEntry{}, false, nil
	}
	if err != nil {
		return passwdEntry{}, false, err
	}
	defer f.Close()
	var found passwdEntry
	ok := false
	err = scanColon(f, func(fields []string) bool {
		if len(fields) < 4 {
			return true
		}
		uid, err1 := parseID(fields[2])
		gid, err2 := parseID(fields[3])
		if err1 != nil || err2 != nil {
			return true
		}
		e := passwdEntry{name: fields[0], uid: uid, gid: gid}
		if match(e) {
			found, ok = e, true
			return false
		}
		return true
	})
	if err != nil {
		return passwdEntry{}, false, fmt.Errorf("read /etc/passwd in rootfs %s: %w", u.root, err)
	}
	return found, ok, nil
}

func (u *rootfsUsers) groups(each func(groupEntry) bool) error {
	f, err := u.open("/etc/group")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	err = scanColon(f, func(fields []string) bool {
		if len(fields) < 3 {
			return true
		}
		gid, err := parseID(fields[2])
		if err != nil {
			return true
		}
		g := groupEntry{name: fields[0], gid: gid}
		if len(fields) > 3 && fields[3] != "" {
			g.members = strings.Split(fields[3], ",")
		}
		return each(g)
	})
	if err != nil {
		return fmt.Errorf("read /etc/group in rootfs %s: %w", u.root, err)
	}
	return nil
}

func (u *rootfsUsers) lookupGroup(match func(groupEntry) bool) (groupEntry, bool, error) {
	var found groupEntry
	ok := false
	err := u.groups(func(g groupEntry) bool {
		if match(g) {
			found, ok = g, true
			return false
		}
		return true
	})
	return found, ok, err
}

// groupsOf returns the gids of the groups that list username as a member,
// other than a group of the same name (its primary group, as containerd).
func (u *rootfsUsers) groupsOf(username string) ([]uint32, error) {
	var gids []uint32
	err := u.groups(func(g groupEntry) bool {
		if g.name != username && slices.Contains(g.members, username) {
			gids = append(gids, g.gid)
		}
		return true
	})
	return gids, err
}

// scanColon calls fn with the colon-separated fields of each line that is not
// blank or a comment, until fn returns false.
func scanColon(r io.Reader, fn func([]string) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if !fn(strings.Split(line, ":")) {
			return nil
		}
	}
	return sc.Err()
}

// maxSymlinks bounds symlink resolution, as the kernel does (path_resolution(7)).
const maxSymlinks = 40

// resolveInRoot resolves name inside root as if root were "/": absolute
// symlinks restart at root and ".." stops there, so the result always names a
// file inside it. os.Root alone refuses such links rather than following
// them; the image's view of its own files is what decides its users. The
// final open still goes through root, which rejects any escape (for example
// by a rename racing with us).
func resolveInRoot(root *os.Root, name string) (string, error) {
	pending := splitPath(name)
	var done []string
	links := 0
	for len(pending) > 0 {
		part := pending[0]
		pending = pending[1:]
		switch part {
		case ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := path.Join(append(done, part)...)
		fi, err := root.Lstat(cur)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.IsDir() && len(pending) > 0 {
				return "", &fs.PathError{Op: "resolve", Path: cur, Err: errors.New("not a directory")}
			}
			done = append(done, part)
			continue
		}
		links++
		if links > maxSymlinks {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: errors.New("too many levels of symbolic links")}
		}
		target, err := root.Readlink(cur)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			done = done[:0]
		}
		pending = append(splitPath(target), pending...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

func splitPath(p string) []string {
	var parts []string
	for part := range strings.SplitSeq(p, "/") {
		if part != "" {
			parts = append(parts, part)
		}
	}
	return parts
}
