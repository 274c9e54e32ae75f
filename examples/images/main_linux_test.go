package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// extract unpacks the images' layers, in order, into a new directory that
// can serve as a chroot (mode 0755 so unprivileged users can resolve paths).
func extract(t *testing.T, archivePath string) string {
	t.Helper()
	a := readArchive(t, archivePath)
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range a.manifest.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(a.blob(t, l.Digest)))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(h.Name, "/")
			if !filepath.IsLocal(name) {
				t.Fatalf("layer entry %q escapes the root", h.Name)
			}
			p := filepath.Join(root, name)
			mode := h.FileInfo().Mode()
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
			case tar.TypeSymlink:
				if err := os.Symlink(h.Linkname, p); err != nil {
					t.Fatal(err)
				}
				continue // symlinks: root-owned, mode 0777
			default:
				t.Fatalf("layer entry %q: unexpected type %c", h.Name, h.Typeflag)
			}
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode.Perm()|mode&(os.ModeSticky|os.ModeSetuid|os.ModeSetgid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// chrootCmd returns a command running argv inside root, as uid:gid, with
// argv[0] looked up in the image's PATH like a container runtime does.
func chrootCmd(t *testing.T, root string, uid, gid uint32, workdir string, argv ...string) *exec.Cmd {
	t.Helper()
	bin := argv[0]
	if !strings.Contains(bin, "/") {
		for d := range strings.SplitSeq(strings.TrimPrefix(defaultPath, "PATH="), ":") {
			if fi, err := os.Stat(filepath.Join(root, d, bin)); err == nil && fi.Mode().IsRegular() {
				bin = d + "/" + bin
				break
			}
		}
		if bin == argv[0] {
			t.Fatalf("%s not found in the image's PATH", bin)
		}
	}
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Dir = workdir
	cmd.Env = []string{defaultPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	return cmd
}

func TestBusyboxChroot(t *testing.T) {
	testenv.RequireRoot(t)
	results := build(t, "busybox", time.Time{})
	root := extract(t, results["busybox"].Path)
	out, err := chrootCmd(t, root, 0, 0, "/", "/bin/sh", "-c", "id www-data; id nodekit; ls /bin | head; env sh -c 'echo applets work'").CombinedOutput()
	if err != nil {
		t.Fatalf("chroot sh: %v\n%s", err, out)
	}
	for _, want := range []string{
		"uid=33(www-data) gid=33(www-data) groups=33(www-data),1000(nodekit)",
		"uid=1000(nodekit) gid=1000(nodekit) groups=1000(nodekit),100(users)",
		"\nbusybox\n",
		"applets work",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestWebServes(t *testing.T) {
	testenv.RequireRoot(t)
	results := build(t, "web", time.Time{})
	root := extract(t, results["web"].Path)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	// As the image says: www-data (33:33), in /www.
	cmd := chrootCmd(t, root, 33, 33, "/www", "httpd", "-f", "-v", "-p", addr, "-h", "/www")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start httpd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited //nolint:errcheck // reaping httpd after the kill, which is its error
	})

	get := func(path string) (string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return string(b), err
	}
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err = get("/healthz")
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			exited <- werr
			t.Fatalf("httpd exited: %v\n%s", werr, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("httpd never answered /healthz: %v\n%s", err, logs.String())
		}
	}
	if body != "ok\n" {
		t.Errorf("/healthz = %q, want %q", body, "ok\n")
	}
	if index, err := get("/"); err != nil || !strings.Contains(index, "nodekit web sample") {
		t.Errorf("GET / = %q, %v", index, err)
	}
}

func TestPause(t *testing.T) {
	testenv.RequireRoot(t)
	results := build(t, "pause", time.Time{})
	root := extract(t, results["pause"].Path)
	nsenter := testenv.LookPath(t, "nsenter")

	tests := []struct {
		name   string
		pidns  bool // run as PID 1 of a new PID namespace
		inside bool // send the signal from inside that namespace (kill 1)
		signal syscall.Signal
	}{
		{"SIGTERM", false, false, syscall.SIGTERM},
		{"SIGINT", false, false, syscall.SIGINT},
		{"SIGTERM as pid 1, reaping orphans", true, false, syscall.SIGTERM},
		{"SIGTERM to pid 1 from inside its namespace", true, true, syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := chrootCmd(t, root, 65535, 65535, "/", "/pause")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if tt.pidns {
				cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
			}
			if err := cmd.Start(); err != nil {
				t.Fatalf("start pause: %v", err)
			}
			pid := cmd.Process.Pid
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				exited <- <-exited
			})

			// Wait until pause waits for its signals, else an early one
			// would meet the default action.
			waitFor(t, "pause to wait for signals", func() bool { return inSigwait(pid) })

			if tt.pidns {
				// A process entering pause's PID namespace leaves an orphan
				// that outlives it: the orphan becomes pause's child, and
				// must be reaped, not left a zombie, when it exits. (The
				// orphan must not hold our output pipe, or CombinedOutput
				// would return only once it is gone.)
				orphan := exec.Command(nsenter, "--target", strconv.Itoa(pid), "--pid", "--", "/bin/busybox", "sh", "-c", "/bin/busybox sleep 1 </dev/null >/dev/null 2>&1 & exit 0")
				if b, err := orphan.CombinedOutput(); err != nil {
					t.Fatalf("nsenter: %v\n%s", err, b)
				}
				waitFor(t, "the orphan to be reparented to pause", func() bool { return len(children(pid)) > 0 })
				waitFor(t, "pause to reap the orphan", func() bool { return len(children(pid)) == 0 })
			}

			if tt.inside {
				// The kernel drops signals to a namespace's init from inside
				// unless it handles them; blocked ones must still arrive.
				kill := exec.Command(nsenter, "--target", strconv.Itoa(pid), "--pid", "--", "/bin/busybox", "kill", "-"+strconv.Itoa(int(tt.signal)), "1")
				// Pause's exit kills the rest of its namespace, and that
				// may include the kill command itself: SIGKILL is fine.
				b, err := kill.CombinedOutput()
				var exitErr *exec.ExitError
				if err != nil && !(errors.As(err, &exitErr) && exitErr.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL) {
					t.Fatalf("kill 1 inside the namespace: %v\n%s", err, b)
				}
			} else if err := cmd.Process.Signal(tt.signal); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				exited <- err
				if err != nil {
					t.Errorf("pause after %s: %v, want exit 0", tt.signal, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("pause still running 5s after %s", tt.signal)
			}
			if out.Len() > 0 {
				t.Errorf("pause printed %q, want nothing", out.String())
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// inSigwait reports whether process pid sleeps in sigwaitinfo(2). (While it
// does, /proc shows the waited-for signals as unblocked, so SigBlk can't tell.)
func inSigwait(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
	return err == nil && strings.Contains(string(b), "sigtimedwait")
}

// children lists the PIDs of pid's children, zombies included.
func children(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}
