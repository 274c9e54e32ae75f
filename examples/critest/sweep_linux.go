package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// daemonProcAttr makes the daemon stop if the runner dies.
func daemonProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// groupCommand runs cmd in a process group of its own (critest with -parallel runs
// ginkgo, which runs critest processes), ended as a whole with SIGTERM when the
// runner's context ends or the runner dies, SIGKILL 30 s later.
func groupCommand(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
}

// sweep removes what a stopped daemon may have left when the CRI cleanup could not
// run: containers still known to runc, mounts under the directory, the cgroup
// parent, the CNI bridge. What it had to remove is logged.
func (d *daemon) sweep(ctx context.Context) error {
	var errs []error
	if out, err := output(ctx, "", d.runc, "--root", d.runcRoot, "list", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			d.log.Warn("removing a leftover container", "id", id)
			if _, err := output(ctx, "", d.runc, "--root", d.runcRoot, "delete", "-f", id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	mounts, err := mountsUnder(d.dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range mounts {
		d.log.Warn("unmounting a leftover mount", "path", m)
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		if d.cgroupParent == "" {
			break
		}
		if err := removeCgroupTree(filepath.Join(h, d.cgroupParent)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", d.bridge)); err == nil {
		if err := exec.CommandContext(ctx, "ip", "link", "del", d.bridge).Run(); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", d.bridge, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroupTree removes a cgroup directory and its children, deepest first.
func removeCgroupTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// shmSegment is a System V shared memory segment from /proc/sysvipc/shm.
type shmSegment struct {
	id, cpid, nattch int
	size             int64
}

// sharedMemory lists the System V shared memory segments by id.
func sharedMemory() map[int]shmSegment {
	out := map[int]shmSegment{}
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return out
	}
	lines := strings.Split(string(b), "\n")
	for _, l := range lines[1:] { // key shmid perms size cpid lpid nattch ...
		f := strings.Fields(l)
		if len(f) < 7 {
			continue
		}
		var s shmSegment
		if _, err := fmt.Sscan(strings.Join([]string{f[1], f[3], f[4], f[6]}, " "), &s.id, &s.size, &s.cpid, &s.nattch); err != nil {
			continue
		}
		out[s.id] = s
	}
	return out
}

// removeSharedMemory removes the segments critest's HostIpc specs create on the
// host (`ipcmk -M 1048576`) and leave: new since before, 1 MiB, unattached, their
// creator gone.
func removeSharedMemory(before map[int]shmSegment, log *slog.Logger) {
	for id, s := range sharedMemory() {
		if _, old := before[id]; old || s.size != 1<<20 || s.nattch != 0 {
			continue
		}
		if err := unix.Kill(s.cpid, 0); err == nil || errors.Is(err, unix.EPERM) {
			continue
		}
		if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
			log.Warn("remove critest's shared memory segment", "id", id, "err", err)
		}
	}
}
