package podns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

var cloneFlags = map[Kind]int{Net: unix.CLONE_NEWNET, IPC: unix.CLONE_NEWIPC, UTS: unix.CLONE_NEWUTS, User: unix.CLONE_NEWUSER}

// pin does its work on a locked OS thread. Afterwards the thread joins its original
// namespaces again and is released; if that fails it stays locked, so the Go runtime
// retires it rather than run other goroutines in the pod's namespaces. The new
// namespaces live on through their bind mounts.
func pin(o Options) (Pinned, error) {
	type result struct {
		pinned Pinned
		err    error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := openThreadNamespaces(o.Kinds)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, err}
			return
		}
		p, err := pinOnThread(o)
		if restoreThreadNamespaces(orig) {
			runtime.UnlockOSThread()
		}
		done <- result{p, err}
	}()
	r := <-done
	return r.pinned, r.err
}

func openThreadNamespaces(kinds []Kind) (map[Kind]int, error) {
	fds := map[Kind]int{}
	for _, k := range kinds {
		fd, err := unix.Open("/proc/thread-self/ns/"+string(k), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("pin namespaces: %w", err)
		}
		fds[k] = fd
	}
	return fds, nil
}

// restoreThreadNamespaces rejoins the namespaces in fds and closes them; it reports
// whether every setns succeeded.
func restoreThreadNamespaces(fds map[Kind]int) bool {
	ok := true
	for k, fd := range fds {
		if err := unix.Setns(fd, cloneFlags[k]); err != nil {
			ok = false
		}
		unix.Close(fd)
	}
	return ok
}

func pinOnThread(o Options) (Pinned, error) {
	flags := 0
	for _, k := range o.Kinds {
		f, ok := cloneFlags[k]
		if !ok {
			return nil, fmt.Errorf("pin namespaces: unknown kind %q", k)
		}
		flags |= f
	}
	if err := unix.Unshare(flags); err != nil {
		return nil, fmt.Errorf("pin namespaces: unshare: %w", err)
	}
	pinned := Pinned{}
	for _, k := range o.Kinds {
		switch k {
		case UTS:
			if o.Hostname != "" {
				if err := unix.Sethostname([]byte(o.Hostname)); err != nil {
					return nil, fmt.Errorf("pin namespaces: set hostname %q: %w", o.Hostname, err)
				}
			}
		case Net:
			if err := loopbackUp(); err != nil {
				return nil, fmt.Errorf("pin namespaces: loopback up: %w", err)
			}
		}
		target := filepath.Join(o.Dir, string(k))
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return nil, fmt.Errorf("pin namespaces: %w", err)
		}
		f.Close()
		src := "/proc/thread-self/ns/" + string(k)
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("pin namespaces: bind %s to %s: %w", src, target, err)
		}
		pinned[k] = target
	}
	return pinned, nil
}

// loopbackUp sets IFF_UP on lo (ifindex 1 in every new network namespace) with a
// netlink RTM_NEWLINK request on the calling thread's namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	type request struct {
		hdr  unix.NlMsghdr
		info unix.IfInfomsg
	}
	req := request{
		hdr: unix.NlMsghdr{
			Len:   uint32(unix.SizeofNlMsghdr + unix.SizeofIfInfomsg),
			Type:  unix.RTM_NEWLINK,
			Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK,
			Seq:   1,
		},
		info: unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: 1, Flags: unix.IFF_UP, Change: unix.IFF_UP},
	}
	buf := (*[unix.SizeofNlMsghdr + unix.SizeofIfInfomsg]byte)(unsafe.Pointer(&req))[:]
	if err := unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	resp := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, resp, 0)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(resp[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
			if errno := *(*int32)(unsafe.Pointer(&m.Data[0])); errno != 0 {
				return unix.Errno(-errno)
			}
			return nil
		}
	}
	return errors.New("no netlink acknowledgement")
}

func unmount(p string) error {
	err := unix.Unmount(p, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", p, err)
}

func adopt(o Options, pid int) (Pinned, error) {
	pinned := Pinned{}
	for _, k := range o.Kinds {
		if _, ok := cloneFlags[k]; !ok {
			return nil, fmt.Errorf("pin namespaces: unknown kind %q", k)
		}
		target := filepath.Join(o.Dir, string(k))
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return nil, fmt.Errorf("pin namespaces: %w", err)
		}
		f.Close()
		src := fmt.Sprintf("/proc/%d/ns/%s", pid, k)
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("pin namespaces: bind %s to %s: %w", src, target, err)
		}
		pinned[k] = target
	}
	return pinned, configure(pinned, o.Hostname)
}

// configure sets the hostname in the pinned UTS namespace and brings loopback
// up in the pinned network namespace, from a locked thread that joins them and
// then rejoins its own (or, failing that, is retired with its goroutine).
func configure(pinned Pinned, hostname string) error {
	var kinds []Kind
	if pinned[UTS] != "" && hostname != "" {
		kinds = append(kinds, UTS)
	}
	if pinned[Net] != "" {
		kinds = append(kinds, Net)
	}
	if len(kinds) == 0 {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := openThreadNamespaces(kinds)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err = configureOnThread(pinned, kinds, hostname)
		if restoreThreadNamespaces(orig) {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

func configureOnThread(pinned Pinned, kinds []Kind, hostname string) error {
	for _, k := range kinds {
		fd, err := unix.Open(pinned[k], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("join %s namespace: %w", k, err)
		}
		err = unix.Setns(fd, cloneFlags[k])
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", k, pinned[k], err)
		}
		switch k {
		case UTS:
			if err := unix.Sethostname([]byte(hostname)); err != nil {
				return fmt.Errorf("set hostname %q: %w", hostname, err)
			}
		case Net:
			if err := loopbackUp(); err != nil {
				return fmt.Errorf("loopback up: %w", err)
			}
		}
	}
	return nil
}
