package cri

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/cri/monitor"
)

// infraProcess is a started infra process that has reported it is set up.
type infraProcess struct {
	cmd   *exec.Cmd
	ctl   *os.File // our end of its control socket
	pid   int
	start uint64
}

// joinFlags are the pod namespaces the infra process joins, by record key.
var joinFlags = []struct {
	kind string
	flag int
}{{"net", unix.CLONE_NEWNET}, {"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}}

// spawnInfra starts `binary pause root` as pid 1 of new PID and mount
// namespaces, in the pinned namespaces of ns (kind → file; a missing kind
// stays the host's), and waits for its report. With userns it instead creates
// a new user namespace with those maps and new network, IPC and UTS
// namespaces inside it (ns must then be empty): the pod's namespaces, owned by
// its user namespace, which the caller pins from the process.
func spawnInfra(binary, root string, ns map[string]string, userns *podUserns) (*infraProcess, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil { // for read deadlines
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "infra-ctl"), os.NewFile(uintptr(fds[1]), "infra-ctl")
	defer theirs.Close()

	mnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		ours.Close()
		return nil, err
	}
	cmd := exec.Command(binary, monitor.PauseArg, root, mnt)
	cmd.Dir = "/"
	cmd.Env = []string{"GOMAXPROCS=1"}
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}
	if userns != nil {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS
		cmd.SysProcAttr.UidMappings = sysProcIDMaps(userns.UIDs)
		cmd.SysProcAttr.GidMappings = sysProcIDMaps(userns.GIDs)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// Root of the new user namespace (the node's root is not mapped in
		// it), so that its execve keeps every capability there.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	started := make(chan error, 1)
	go func() {
		// setns changes only this thread, whose children inherit its
		// namespaces. The thread is never unlocked: it ends with this
		// goroutine, so nothing else ever runs in the pod's namespaces.
		goruntime.LockOSThread()
		for _, j := range joinFlags {
			if p := ns[j.kind]; p != "" {
				if err := setns(p, j.flag); err != nil {
					started <- err
					return
				}
			}
		}
		started <- cmd.Start()
	}()
	if err := <-started; err != nil {
		ours.Close()
		return nil, fmt.Errorf("start %s %s: %w", binary, monitor.PauseArg, err)
	}
	p := &infraProcess{cmd: cmd, ctl: ours, pid: cmd.Process.Pid}
	p.start, _ = procStartTime(p.pid)

	ours.SetReadDeadline(time.Now().Add(infraStartTimeout))
	line, rerr := bufio.NewReader(ours).ReadString('\n')
	ours.SetReadDeadline(time.Time{})
	if line = strings.TrimSpace(line); line != "ok" {
		_ = p.abort() // always nil (its signature is undo's)
		msg := strings.TrimPrefix(line, "error: ")
		if msg == "" {
			msg = fmt.Sprintf("no report: %v", rerr)
		}
		return nil, fmt.Errorf("infra process: %s", msg)
	}
	return p, nil
}

func sysProcIDMaps(maps []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(maps))
	for _, m := range maps {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

func setns(path string, flag int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("join %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("join %s: %w", path, err)
	}
	return nil
}

// release tells the process it is recorded, so it runs on its own.
func (p *infraProcess) release() error {
	_, err := p.ctl.Write([]byte{1})
	p.ctl.Close()
	return err
}

// abort kills and reaps a process that was never released.
func (p *infraProcess) abort() error {
	p.ctl.Close()
	p.cmd.Process.Kill()
	p.cmd.Wait()
	return nil
}

// wait reaps the process.
func (p *infraProcess) wait() { p.cmd.Wait() }

// pinPidNamespace bind-mounts the PID namespace of pid at target.
func pinPidNamespace(pid int, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o711); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	src := fmt.Sprintf("/proc/%d/ns/pid", pid)
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("pin %s at %s: %w", src, target, err)
	}
	return nil
}

// unpinPidNamespace undoes pinPidNamespace; a missing pin is not an error.
func unpinPidNamespace(target string) error {
	if err := unmount(target); err != nil {
		return err
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// placeInfraCgroup moves the infra process into <pod parent>/nodekit-infra in
// every cgroup hierarchy, with the cgroupfs driver. The cpuset hierarchy (v1)
// is left out: a new cpuset cgroup has no CPUs until they are copied down.
// Under a parent the shim did not make, hierarchies where it does not exist
// are left out too. With the systemd driver the process stays in the shim's
// cgroup.
func (s *Server) placeInfraCgroup(rec *sandboxRecord, pid int) error {
	fs, ok := s.cgroups.(fsCgroups)
	if !ok {
		return nil
	}
	mounts, err := fs.mounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if strings.Contains(filepath.Base(m), "cpuset") {
			continue
		}
		parent := filepath.Join(m, rec.Cgroup)
		if !rec.OwnCgroup {
			if _, err := os.Stat(parent); err != nil {
				continue
			}
		}
		dir := filepath.Join(parent, infraCgroup)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("move pid %d to %s: %w", pid, dir, err))
		}
	}
	return errors.Join(errs...)
}

// removeInfraCgroup removes the infra cgroups under parent; its process must
// have exited. An exited process may linger in its cgroup for a moment, so a
// busy cgroup is retried briefly.
func (s *Server) removeInfraCgroup(parent string) error {
	fs, ok := s.cgroups.(fsCgroups)
	if !ok {
		return nil
	}
	mounts, err := fs.mounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		dir := filepath.Join(m, parent, infraCgroup)
		deadline := time.Now().Add(2 * time.Second)
		for {
			err := unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if errors.Is(err, unix.EBUSY) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
			break
		}
	}
	return errors.Join(errs...)
}
