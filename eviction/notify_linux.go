package eviction

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// psiTrigger asks for a wakeup when some task stalled on memory for 200 ms
// within 2 s (a 2 s multiple is what the kernel allows without
// CAP_SYS_RESOURCE).
const psiTrigger = "some 200000 2000000"

// probe finds the cgroup version of n.dir and checks its files.
func (n *MemoryNotifier) probe() error {
	var st unix.Statfs_t
	if err := unix.Statfs(n.dir, &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		n.v2 = true
		n.pressure = filepath.Join(n.dir, "memory.pressure")
		if _, err := os.Stat(n.pressure); err != nil {
			n.pressure = "/proc/pressure/memory"
			if _, err := os.Stat(n.pressure); err != nil {
				return fmt.Errorf("cgroup v2 without memory pressure information (no memory.pressure, no /proc/pressure/memory; kernel without PSI?): %w", err)
			}
		}
		return nil
	}
	for _, f := range []string{"memory.usage_in_bytes", "cgroup.event_control"} {
		if _, err := os.Stat(filepath.Join(n.dir, f)); err != nil {
			return fmt.Errorf("not a cgroup v1 memory controller directory: %w", err)
		}
	}
	return nil
}

// Run waits for the kernel's notifications and calls notify for each, until
// ctx ends. Only one Run at a time.
func (n *MemoryNotifier) Run(ctx context.Context, notify func()) error {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("eviction: %s: eventfd: %w", n, err)
	}
	n.mu.Lock()
	if n.wake != nil {
		n.mu.Unlock()
		unix.Close(wake)
		return fmt.Errorf("eviction: %s: already running", n)
	}
	n.wake = func() { signalEventfd(wake) }
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.wake = nil
		n.mu.Unlock()
		unix.Close(wake)
	}()
	stop := context.AfterFunc(ctx, n.interrupt)
	defer stop()

	if n.v2 {
		return n.runV2(ctx, wake, notify)
	}
	return n.runV1(ctx, wake, notify)
}

func signalEventfd(fd int) {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	_, _ = unix.Write(fd, b[:]) // EAGAIN: already signalled
}

func drainEventfd(fd int) error {
	var b [8]byte
	_, err := unix.Read(fd, b[:])
	if err == unix.EAGAIN {
		return nil
	}
	return err
}

// pollFds waits for events on fds, retrying on EINTR.
func pollFds(fds []unix.PollFd) error {
	for {
		_, err := unix.Poll(fds, -1)
		if err != unix.EINTR {
			return err
		}
	}
}

// runV1 keeps a memcg threshold event armed at n.want and notifies when it fires.
func (n *MemoryNotifier) runV1(ctx context.Context, wake int, notify func()) error {
	ev, armedAt, failedAt := -1, int64(0), int64(0)
	defer func() {
		if ev >= 0 {
			unix.Close(ev)
		}
	}()
	for ctx.Err() == nil {
		n.mu.Lock()
		want := n.want
		n.mu.Unlock()
		if want > 0 && (ev < 0 || want != armedAt) {
			if ev >= 0 {
				unix.Close(ev) // unregisters the old event
				ev = -1
			}
			fd, err := armMemcgThreshold(n.dir, want)
			switch {
			case err == nil:
				ev, armedAt, failedAt = fd, want, 0
				n.log.Debug("eviction: memory notifier armed", "usageBytes", want)
				if n.armed != nil {
					n.armed()
				}
			case want != failedAt:
				failedAt = want
				n.log.Warn("eviction: cannot arm memory notifier", "usageBytes", want, "err", err)
			default:
				n.log.Debug("eviction: cannot arm memory notifier", "usageBytes", want, "err", err)
			}
		}
		fds := []unix.PollFd{{Fd: int32(wake), Events: unix.POLLIN}}
		if ev >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(ev), Events: unix.POLLIN})
		}
		if err := pollFds(fds); err != nil {
			return fmt.Errorf("eviction: %s: poll: %w", n, err)
		}
		if fds[0].Revents != 0 {
			if err := drainEventfd(wake); err != nil {
				return fmt.Errorf("eviction: %s: read wake eventfd: %w", n, err)
			}
		}
		if len(fds) > 1 && fds[1].Revents != 0 {
			if err := drainEventfd(ev); err != nil {
				// The cgroup went away, or the event broke: re-arm.
				n.log.Warn("eviction: memory notifier event failed, re-arming", "err", err)
				unix.Close(ev)
				ev = -1
				continue
			}
			n.log.Info("eviction: memory threshold crossed")
			notify()
		}
	}
	return nil
}

// armMemcgThreshold registers an eventfd the kernel signals when the memory
// usage of the cgroup v1 dir crosses threshold bytes, either way.
func armMemcgThreshold(dir string, threshold int64) (int, error) {
	usagePath := filepath.Join(dir, "memory.usage_in_bytes")
	watch, err := unix.Open(usagePath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", usagePath, err)
	}
	defer unix.Close(watch)
	controlPath := filepath.Join(dir, "cgroup.event_control")
	control, err := unix.Open(controlPath, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", controlPath, err)
	}
	defer unix.Close(control)
	ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("eventfd: %w", err)
	}
	line := strconv.Itoa(ev) + " " + strconv.Itoa(watch) + " " + strconv.FormatInt(threshold, 10)
	if _, err := unix.Write(control, []byte(line)); err != nil {
		unix.Close(ev)
		return -1, fmt.Errorf("write %q to %s: %w", line, controlPath, err)
	}
	return ev, nil
}

// runV2 notifies on the PSI trigger and on changes of memory.events.
func (n *MemoryNotifier) runV2(ctx context.Context, wake int, notify func()) error {
	psi, err := unix.Open(n.pressure, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("eviction: %s: open %s: %w", n, n.pressure, err)
	}
	defer unix.Close(psi)
	// The kernel overwrites the last byte written with a NUL: send one.
	if _, err := unix.Write(psi, append([]byte(psiTrigger), 0)); err != nil {
		return fmt.Errorf("eviction: %s: write PSI trigger %q to %s: %w", n, psiTrigger, n.pressure, err)
	}

	events := -1
	eventsPath := filepath.Join(n.dir, "memory.events")
	if fd, err := unix.Open(eventsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		events = fd
		defer unix.Close(events)
		if err := rereadEvents(events); err != nil {
			return fmt.Errorf("eviction: %s: read %s: %w", n, eventsPath, err)
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("eviction: %s: open %s: %w", n, eventsPath, err)
	}
	n.log.Debug("eviction: memory notifier armed", "psi", n.pressure, "trigger", psiTrigger, "events", events >= 0)
	if n.armed != nil {
		n.armed()
	}

	for ctx.Err() == nil {
		fds := []unix.PollFd{
			{Fd: int32(wake), Events: unix.POLLIN},
			{Fd: int32(psi), Events: unix.POLLPRI},
		}
		if events >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(events), Events: unix.POLLPRI})
		}
		if err := pollFds(fds); err != nil {
			return fmt.Errorf("eviction: %s: poll: %w", n, err)
		}
		if fds[0].Revents != 0 {
			if err := drainEventfd(wake); err != nil {
				return fmt.Errorf("eviction: %s: read wake eventfd: %w", n, err)
			}
		}
		fired := false
		if r := fds[1].Revents; r&unix.POLLERR != 0 {
			return fmt.Errorf("eviction: %s: PSI trigger on %s failed (cgroup removed?)", n, n.pressure)
		} else if r&unix.POLLPRI != 0 {
			fired = true
		}
		if events >= 0 && fds[2].Revents&(unix.POLLPRI|unix.POLLERR) != 0 {
			if err := rereadEvents(events); err != nil {
				return fmt.Errorf("eviction: %s: read %s: %w", n, eventsPath, err)
			}
			fired = true
		}
		if fired {
			n.log.Info("eviction: memory pressure notification")
			notify()
		}
	}
	return nil
}

// rereadEvents reads memory.events from the start, which re-arms its poll
// notification.
func rereadEvents(fd int) error {
	var b [512]byte
	_, err := unix.Pread(fd, b[:], 0)
	return err
}
