package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testrootfs"
)

// bundle makes a busybox bundle running `sleep 1000` and starts it detached.
func startContainer(t *testing.T) (*Runtime, string, *specs.Process) {
	testenv.RequireRoot(t)
	bin := testenv.Binary(t, "runc")
	dir, err := os.MkdirTemp("", "nkrunc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	rootfs := filepath.Join(dir, "bundle", "rootfs")
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testrootfs.Busybox(t, rootfs, "sh", "sleep", "echo", "cat")
	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command(bin, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v %s", err, out)
	}
	var sp specs.Spec
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &sp); err != nil {
		t.Fatal(err)
	}
	sp.Process.Terminal = false
	sp.Process.Args = []string{"sleep", "1000"}
	sp.Root.Readonly = false
	sp.Linux.CgroupsPath = "/nodekit-runc-test/" + filepath.Base(dir)
	if raw, err = json.Marshal(&sp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}

	r, err := New(Options{Binary: bin, Root: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	id := "t" + strings.TrimPrefix(filepath.Base(dir), "nkrunc-")
	// The detached container inherits runc's stdio: give it a file, not a pipe that
	// would never reach EOF.
	out, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, append(r.GlobalArgs(), "run", "-d", "--bundle", bundle, id)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(out.Name())
		t.Fatalf("runc run: %v %s", err, log)
	}
	t.Cleanup(func() {
		if err := r.Delete(context.Background(), id); err != nil {
			t.Errorf("cleanup: runc delete %s: %v", id, err)
		}
		// runc removes the container's own cgroup; the shared parent is ours to
		// remove, in every hierarchy (v1 mounts each controller separately).
		parents, _ := filepath.Glob("/sys/fs/cgroup/*/nodekit-runc-test")
		if _, err := os.Stat("/sys/fs/cgroup/nodekit-runc-test"); err == nil {
			parents = append(parents, "/sys/fs/cgroup/nodekit-runc-test")
		}
		for _, p := range parents {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return r, id, sp.Process
}

func TestStateExecKillDelete(t *testing.T) {
	r, id, proc := startContainer(t)
	ctx := context.Background()
	st, err := r.State(ctx, id)
	if err != nil || st.Status != "running" || st.Pid <= 0 {
		t.Fatalf("state = %+v, %v", st, err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("list = %+v, %v", list, err)
	}

	p := *proc
	p.Args = []string{"sh", "-c", "cat; echo err >&2; exit 4"}
	var stdout, stderr bytes.Buffer
	code, err := r.Exec(ctx, id, ExecOptions{Process: &p, Stdin: strings.NewReader("in\n"), Stdout: &stdout, Stderr: &stderr, Dir: t.TempDir()})
	if err != nil || code != 4 || stdout.String() != "in\n" || stderr.String() != "err\n" {
		t.Fatalf("exec: code %d err %v stdout %q stderr %q", code, err, stdout.String(), stderr.String())
	}

	p.Args = []string{"sleep", "60"}
	start := time.Now()
	_, err = r.Exec(ctx, id, ExecOptions{Process: &p, Timeout: 300 * time.Millisecond, Dir: t.TempDir()})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("exec past timeout: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("timed-out exec returned after %s", d)
	}

	p.Args = []string{"/no/such/thing"}
	_, err = r.Exec(ctx, id, ExecOptions{Process: &p, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "/no/such/thing") {
		t.Fatalf("exec of a missing binary: %v", err)
	}

	if err := r.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r.Exists(id) {
		t.Fatal("state remains after delete")
	}
	if _, err := r.State(ctx, id); !errors.Is(err, ErrNotExist) {
		t.Fatalf("state after delete: %v", err)
	}
	if err := r.Delete(ctx, id); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

// A terminal exec: runc sends the pty master to the console socket and the reaper
// (nodekit-monitor reap) reports the process's exit code.
func TestExecTerminalThroughConsoleSocket(t *testing.T) {
	r, id, proc := startContainer(t)
	reaper := testenv.Binary(t, "nodekit-monitor")
	dir := t.TempDir()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "console.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	masters := make(chan *os.File, 1)
	go func() {
		defer close(masters)
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(make([]byte, 256), oob)
		if err != nil {
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) == 1 {
			if fds, _ := unix.ParseUnixRights(&msgs[0]); len(fds) == 1 {
				masters <- os.NewFile(uintptr(fds[0]), "pty-master")
			}
		}
	}()

	p := *proc
	p.Terminal = true
	p.ConsoleSize = &specs.Box{Height: 40, Width: 100}
	p.Args = []string{"sh", "-c", "busybox stty size; read line; echo got $line; exit 5"}
	type result struct {
		code int
		err  error
	}
	results := make(chan result, 1)
	go func() {
		code, err := r.Exec(context.Background(), id, ExecOptions{Process: &p, Dir: dir,
			ConsoleSocket: filepath.Join(dir, "console.sock"), Reaper: []string{reaper, "reap"}})
		results <- result{code, err}
	}()
	var master *os.File
	select {
	case m, ok := <-masters:
		if !ok {
			t.Fatal("no pty master received")
		}
		master = m
	case res := <-results:
		t.Fatalf("exec ended before sending a pty (is %s a nodekit-monitor with reap mode?): %d, %v", reaper, res.code, res.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no pty master received in time")
	}
	defer master.Close()
	var out bytes.Buffer
	readUntil := func(want string) {
		t.Helper()
		buf := make([]byte, 1024)
		for !strings.Contains(out.String(), want) {
			master.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				t.Fatalf("reading the pty for %q: %v (got %q)", want, err, out.String())
			}
		}
	}
	readUntil("40 100")
	if _, err := master.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	readUntil("got hi")
	select {
	case res := <-results:
		if res.err != nil || res.code != 5 {
			t.Fatalf("exit code %d (%v), want 5", res.code, res.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("terminal exec did not return")
	}

	if _, err := r.Exec(context.Background(), id, ExecOptions{Process: &p, Dir: dir, ConsoleSocket: "/x"}); err == nil {
		t.Fatal("a console socket without a reaper was accepted")
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{Root: "/x"}); err == nil {
		t.Fatal("New without binary succeeded")
	}
	if _, err := New(Options{Binary: "/x"}); err == nil {
		t.Fatal("New without root succeeded")
	}
	r, _ := New(Options{Binary: "runc", Root: "/r", SystemdCgroup: true})
	if got := strings.Join(r.GlobalArgs(), " "); got != "--root /r --systemd-cgroup" {
		t.Fatalf("global args %q", got)
	}
}
