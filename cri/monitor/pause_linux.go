package monitor

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// PauseArg, as the first argument, makes nodekit-monitor the holder of a
// pod's PID namespace instead of a container's monitor:
//
//	nodekit-monitor pause DIR MNTNS
//
// See Pause.
const PauseArg = "pause"

// PauseUID and PauseGID are the ids the holder runs as once set up (those of
// the Kubernetes pause image): not root, and not a uid containers commonly
// use, so a container process cannot signal it without CAP_KILL.
const (
	PauseUID = 65535
	PauseGID = 65535
)

// Pause is the main of a pod's PID namespace holder, the pod's infra process.
// The shim starts it as pid 1 of new PID and mount namespaces, inside the
// pod's network, IPC and UTS namespaces, with one end of a socket pair as fd
// 3 and args = [DIR, MNTNS]: an empty directory, and the shim's mount
// namespace as /proc/self/ns/mnt names it ("mnt:[4026531841]"). Pause:
//
//   - checks it is pid 1 and not in MNTNS: the steps that follow must never
//     touch the host's mount namespace;
//   - makes its mount namespace private, mounts an empty read-only tmpfs on
//     DIR and pivots into it, so /proc/1/root and /proc/1/cwd seen from the
//     pod's containers lead nowhere;
//   - drops to PauseUID/PauseGID with no supplementary groups, which also
//     drops every capability;
//   - reports "ok" (or "error: ...") on fd 3 and waits for one byte back:
//     end of file instead means the shim died before recording this process,
//     and Pause exits so that nothing is left behind;
//   - then reaps every process the namespace orphans, until SIGTERM or SIGINT
//     make it exit with status 0. Other signals are ignored.
//
// When it exits the kernel kills every process left in the namespace.
func Pause(args []string) int {
	ctl := os.NewFile(3, "ctl")
	if len(args) != 2 {
		fmt.Fprintf(ctl, "error: usage: nodekit-monitor %s DIR MNTNS\n", PauseArg)
		return 2
	}
	// Signals first: from now on a SIGTERM is noticed, not fatal.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	signal.Ignore(unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE, unix.SIGUSR1, unix.SIGUSR2,
		unix.SIGALRM, unix.SIGVTALRM, unix.SIGPWR, unix.SIGXCPU, unix.SIGXFSZ,
		unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU)

	if err := pauseSetup(args[0], args[1]); err != nil {
		fmt.Fprintf(ctl, "error: %v\n", err)
		return 1
	}
	if _, err := ctl.WriteString("ok\n"); err != nil {
		return 1
	}
	var b [1]byte
	if n, _ := ctl.Read(b[:]); n != 1 {
		return 1 // the shim is gone: it never learnt of this process
	}
	ctl.Close()

	for sig := range sigs {
		if sig != unix.SIGCHLD {
			return 0
		}
		reapAll()
	}
	return 0
}

// pauseSetup moves the process into an empty read-only root and drops its
// privileges.
func pauseSetup(dir, spawnerMnt string) error {
	if os.Getpid() != 1 {
		return fmt.Errorf("not pid 1 of a new PID namespace (pid %d)", os.Getpid())
	}
	if mnt, err := os.Readlink("/proc/self/ns/mnt"); err != nil || mnt == spawnerMnt || spawnerMnt == "" {
		return fmt.Errorf("not in a mount namespace of its own (%s, spawned from %q): %v", mnt, spawnerMnt, err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, "size=4k,nr_inodes=4,mode=0555"); err != nil {
		return fmt.Errorf("mount empty root at %s: %w", dir, err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// detach then leaves only the new root.
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", dir, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|flags, ""); err != nil {
		return fmt.Errorf("make the root read-only: %w", err)
	}
	// The syscall package's calls apply to every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(PauseGID); err != nil {
		return fmt.Errorf("setgid %d: %w", PauseGID, err)
	}
	if err := syscall.Setuid(PauseUID); err != nil {
		return fmt.Errorf("setuid %d: %w", PauseUID, err)
	}
	return nil
}

// reapAll collects every exited child without blocking.
func reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
