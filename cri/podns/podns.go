package podns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Kind is a namespace type that can be pinned.
type Kind string

// The kinds of namespace a pod shares between its containers.
const (
	Net  Kind = "net"
	IPC  Kind = "ipc"
	UTS  Kind = "uts"
	User Kind = "user"
)

// validate refuses kinds this package does not pin, before anything is made.
func (o Options) validate() error {
	for _, k := range o.Kinds {
		switch k {
		case Net, IPC, UTS, User:
		default:
			return fmt.Errorf("pin namespaces: unknown kind %q (want net, ipc, uts or user)", k)
		}
	}
	return nil
}

// Options says which namespaces to create.
type Options struct {
	// Dir receives one file per pinned namespace (Dir/net, Dir/ipc, Dir/uts). It is
	// created if missing.
	Dir string
	// Kinds are the namespaces to create; a kind not listed stays the host's.
	Kinds []Kind
	// Hostname is set in a new UTS namespace.
	Hostname string
}

// Pinned holds the paths of the pinned namespace files, keyed by kind.
type Pinned map[Kind]string

// Path returns the pinned file of kind k, or "" when the pod uses the host's.
func (p Pinned) Path(k Kind) string { return p[k] }

// Pin creates the namespaces in o.Kinds and pins them under o.Dir. With a new
// network namespace the loopback interface is brought up. On error nothing is left
// mounted.
func Pin(o Options) (Pinned, error) {
	if len(o.Kinds) == 0 {
		return Pinned{}, nil
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("pin namespaces: %w", err)
	}
	pinned, err := pin(o)
	if err != nil {
		return nil, errors.Join(err, Unpin(o.Dir)) // nothing is left mounted, or it says so
	}
	return pinned, nil
}

// Adopt pins the namespaces in o.Kinds of the running process pid (which
// created them, for example inside a new user namespace, where a thread of a
// multi-threaded process cannot go) under o.Dir, then sets the hostname in its
// UTS namespace and brings loopback up in its network namespace. On error
// nothing is left mounted.
func Adopt(o Options, pid int) (Pinned, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("pin namespaces of pid %d: %w", pid, err)
	}
	pinned, err := adopt(o, pid)
	if err != nil {
		return nil, errors.Join(err, Unpin(o.Dir)) // nothing is left mounted, or it says so
	}
	return pinned, nil
}

// Unpin unmounts and removes every namespace file under dir. It is idempotent: a
// missing dir or an already unmounted file is not an error.
func Unpin(dir string) error {
	var errs []error
	for _, k := range []Kind{Net, IPC, UTS, User} {
		p := filepath.Join(dir, string(k))
		if err := unmount(p); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
