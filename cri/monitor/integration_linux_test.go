package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/cri/crilog"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// Integration tests: real runc, real cgroups, root. Containers run busybox from a
// rootfs made of /bin/busybox and its applet links, with cgroupsPath
// /nodekit-test/<id>.

const cgroupParent = "nodekit-test"

type runcEnv struct {
	runc, root, bundle, state, id string
}

// newContainer prepares a bundle running args and registers the cleanup of
// everything the container may leave.
func newContainer(t *testing.T, args []string, edit func(spec map[string]any)) *runcEnv {
	t.Helper()
	testenv.RequireRoot(t)
	busybox := testenv.LookPath(t, "busybox")
	e := &runcEnv{
		runc: testenv.Binary(t, "runc"), root: t.TempDir(), bundle: t.TempDir(), state: t.TempDir(),
		id: fmt.Sprintf("nkmon-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9),
	}
	bin := filepath.Join(e.bundle, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "echo", "sleep", "tail", "head", "tr", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(e.runc, "spec", "--bundle", e.bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	var spec map[string]any
	configPath := filepath.Join(e.bundle, "config.json")
	if data, err = os.ReadFile(configPath); err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	process := spec["process"].(map[string]any)
	process["terminal"] = false
	process["args"] = args
	linux := spec["linux"].(map[string]any)
	linux["cgroupsPath"] = "/" + cgroupParent + "/" + e.id
	var namespaces []any
	for _, ns := range linux["namespaces"].([]any) {
		if ns.(map[string]any)["type"] != "network" {
			namespaces = append(namespaces, ns)
		}
	}
	linux["namespaces"] = namespaces
	if edit != nil {
		edit(spec)
	}
	if data, err = json.Marshal(spec); err == nil {
		err = os.WriteFile(configPath, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Best effort: the test may have deleted the container and its cgroups.
		_ = exec.Command(e.runc, "--root", e.root, "delete", "--force", e.id).Run()
		for _, dir := range e.cgroupDirs() {
			_ = syscall.Rmdir(dir)
		}
		// The shared parents, once empty.
		parents, _ := filepath.Glob(filepath.Join(DefaultCgroupRoot, "*", cgroupParent))
		for _, dir := range append(parents, filepath.Join(DefaultCgroupRoot, cgroupParent)) {
			_ = syscall.Rmdir(dir) // fails while another test's are in it
		}
	})
	return e
}

func (e *runcEnv) config() Config {
	return Config{
		ID: e.id, Bundle: e.bundle, Runtime: e.runc, RuntimeRoot: e.root,
		LogPath: filepath.Join(e.state, "log", "0.log"), ExitFile: filepath.Join(e.state, "exit.json"),
		PidFile: filepath.Join(e.state, "pid"), DeleteOnExit: true,
	}
}

// cgroupDirs are the container's cgroup directories that exist now.
func (e *runcEnv) cgroupDirs() []string {
	v1, _ := filepath.Glob(filepath.Join(DefaultCgroupRoot, "*", cgroupParent, e.id))
	v2, _ := filepath.Glob(filepath.Join(DefaultCgroupRoot, cgroupParent, e.id))
	return append(v1, v2...)
}

func (e *runcEnv) start(t *testing.T, cfg Config) *Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, monitorBinary(t), e.state, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// assertGone checks that the runtime state and cgroups of the container are gone.
func (e *runcEnv) assertGone(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(e.root, e.id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runc state of %s still there (%v)", e.id, err)
	}
	if dirs := e.cgroupDirs(); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
}

// finish waits for the exit record and the monitor's exit and checks that nothing
// is left.
func (e *runcEnv) finish(t *testing.T, p *Process, cfg Config, timeout time.Duration) Exit {
	t.Helper()
	exit := waitExit(t, cfg.ExitFile, timeout)
	if st := reap(t, p, 30*time.Second); !st.Success() {
		t.Errorf("monitor exited with %v", st)
	}
	e.assertGone(t)
	if exit.Pid != p.ContainerPid {
		t.Errorf("exit record pid %d, want %d", exit.Pid, p.ContainerPid)
	}
	return exit
}

func readLog(t *testing.T, path string) []crilog.Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []crilog.Entry
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			e, perr := crilog.ParseLine(line)
			if perr != nil {
				t.Fatalf("log line %q: %v", line, perr)
			}
			entries = append(entries, e)
		}
		if err != nil {
			return entries
		}
	}
}

func TestRuncExitCodeAndLog(t *testing.T) {
	e := newContainer(t, []string{"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"}, nil)
	cfg := e.config()
	before := time.Now()
	p := e.start(t, cfg)
	exit := e.finish(t, p, cfg, 30*time.Second)
	if exit.ExitCode != 3 || exit.Signal != 0 || exit.OOMKilled || exit.Error != "" {
		t.Errorf("exit record %+v, want exit code 3", exit)
	}
	if exit.FinishedAt.Before(before) || exit.FinishedAt.After(time.Now()) {
		t.Errorf("FinishedAt %v not within the test", exit.FinishedAt)
	}
	got := map[string]string{}
	for _, en := range readLog(t, cfg.LogPath) {
		if en.Partial || en.Time.Before(before.Add(-time.Second)) {
			t.Errorf("unexpected record %+v", en)
		}
		got[en.Stream] += string(en.Content) + "\n"
	}
	if got[crilog.Stdout] != "to-stdout\n" || got[crilog.Stderr] != "to-stderr\n" {
		t.Errorf("log holds %q", got)
	}
}

// helperEnv, when set, makes the test binary a stand-in shim: it starts the
// monitor for the JSON-encoded helperRequest, prints the Process and blocks until
// killed.
const helperEnv = "NODEKIT_MONITOR_TEST_SHIM"

type helperRequest struct {
	Binary, Dir string
	Config      Config
}

func init() {
	if req := os.Getenv(helperEnv); req != "" {
		var r helperRequest
		if err := json.Unmarshal([]byte(req), &r); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		p, err := Start(context.Background(), r.Binary, r.Dir, r.Config)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Printf("%d %d\n", p.ContainerPid, p.MonitorPid)
		select {}
	}
}

func ppid(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	n, _ := strconv.Atoi(fields[1])
	return n
}

func TestRuncMonitorOutlivesShimAndReportsSignal(t *testing.T) {
	e := newContainer(t, []string{"sleep", "1000"}, nil)
	cfg := e.config()
	// This test process adopts the monitor once the stand-in shim dies, so it can
	// reap it.
	adoptOrphans(t)

	req, _ := json.Marshal(helperRequest{Binary: monitorBinary(t), Dir: e.state, Config: cfg})
	shim := exec.Command(os.Args[0], "-test.run=^$")
	shim.Env = append(os.Environ(), helperEnv+"="+string(req))
	out, err := shim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := shim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shim.Process.Kill(); shim.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	var containerPid, monitorPid int
	if _, serr := fmt.Sscan(line, &containerPid, &monitorPid); err != nil || serr != nil {
		t.Fatalf("stand-in shim said %q (%v, %v)", line, err, serr)
	}
	t.Cleanup(func() { syscall.Kill(monitorPid, syscall.SIGKILL); _, _ = unix.Wait4(monitorPid, nil, 0, nil) })

	// The shim dies; the monitor and container carry on.
	shim.Process.Kill()
	shim.Wait()
	waitFor(t, "the monitor to be adopted", 10*time.Second, func() bool { return ppid(monitorPid) == os.Getpid() })
	if !alive(monitorPid) || !alive(containerPid) {
		t.Fatalf("after the shim died: monitor alive %v, container alive %v", alive(monitorPid), alive(containerPid))
	}
	if _, err := ReadExit(cfg.ExitFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("exit record of a running container: %v", err)
	}
	// What assertGone checks below exists while the container runs.
	if _, err := os.Stat(filepath.Join(e.root, e.id)); err != nil || len(e.cgroupDirs()) == 0 {
		t.Fatalf("running container: runc state %v, cgroups %v", err, e.cgroupDirs())
	}

	if err := syscall.Kill(containerPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exit := waitExit(t, cfg.ExitFile, 30*time.Second)
	var ws unix.WaitStatus
	waitFor(t, "the monitor to exit", 30*time.Second, func() bool {
		pid, _ := unix.Wait4(monitorPid, &ws, unix.WNOHANG, nil)
		return pid == monitorPid
	})
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("monitor wait status %v", ws)
	}
	e.assertGone(t)
	if exit.Pid != containerPid || exit.ExitCode != 137 || exit.Signal != 9 || exit.OOMKilled {
		t.Errorf("exit record %+v, want pid %d, 137, signal 9", exit, containerPid)
	}
}

func TestRuncStartErrorLeavesNothing(t *testing.T) {
	e := newContainer(t, []string{"nope"}, nil)
	cfg := e.config()
	_, err := Start(context.Background(), monitorBinary(t), e.state, cfg)
	const want = `exec: "nope": executable file not found in $PATH`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Start = %v, want an error containing %q", err, want)
	}
	t.Logf("start error: %v", err)
	e.assertGone(t)
	if _, err := os.Stat(cfg.ExitFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("exit file after a failed start: %v", err)
	}
	// Start reaped the monitor: no child of ours runs the monitor binary.
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, exe := range procs {
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(exe)))
		if target, _ := os.Readlink(exe); target == monitorBinary(t) && ppid(pid) == os.Getpid() {
			t.Errorf("monitor %d left behind", pid)
		}
	}
}

func TestRuncOOMKilled(t *testing.T) {
	e := newContainer(t, []string{"tail", "/dev/zero"}, func(spec map[string]any) {
		resources := spec["linux"].(map[string]any)["resources"].(map[string]any)
		resources["memory"] = map[string]any{"limit": 16 << 20}
	})
	cfg := e.config()
	p := e.start(t, cfg)
	exit := e.finish(t, p, cfg, 60*time.Second)
	if !exit.OOMKilled || exit.ExitCode != 137 || exit.Signal != 9 {
		t.Errorf("exit record %+v, want OOM killed with 137", exit)
	}
}

func TestRuncLongLine(t *testing.T) {
	const size = 100 << 10
	e := newContainer(t, []string{"sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | tr '\000' x; echo; echo next`, size)}, nil)
	cfg := e.config()
	p := e.start(t, cfg)
	exit := e.finish(t, p, cfg, 30*time.Second)
	if exit.ExitCode != 0 || exit.Error != "" {
		t.Errorf("exit record %+v", exit)
	}
	entries := readLog(t, cfg.LogPath)
	var line []byte
	var tags []bool
	for _, en := range entries[:len(entries)-1] {
		if len(en.Content) > crilog.DefaultMaxLine {
			t.Errorf("record of %d bytes", len(en.Content))
		}
		line = append(line, en.Content...)
		tags = append(tags, en.Partial)
	}
	wantRecords := size/crilog.DefaultMaxLine + 1
	if len(tags) != wantRecords || tags[len(tags)-1] || tags[0] != true {
		t.Errorf("%d records (partial: %v), want %d: P... then F", len(tags), tags, wantRecords)
	}
	if string(line) != strings.Repeat("x", size) {
		t.Errorf("reassembled line of %d bytes differs", len(line))
	}
	if last := entries[len(entries)-1]; string(last.Content) != "next" || last.Partial {
		t.Errorf("last record %+v", last)
	}
}

func TestRuncTerminal(t *testing.T) {
	e := newContainer(t, []string{"sh", "-c", "echo hello-tty; echo to-stderr >&2"}, func(spec map[string]any) {
		spec["process"].(map[string]any)["terminal"] = true
	})
	cfg := e.config()
	cfg.Terminal = true
	p := e.start(t, cfg)
	exit := e.finish(t, p, cfg, 30*time.Second)
	if exit.ExitCode != 0 || exit.Error != "" {
		t.Errorf("exit record %+v", exit)
	}
	var got []string
	for _, en := range readLog(t, cfg.LogPath) {
		got = append(got, en.Stream+" "+string(en.Content))
	}
	// The pty turns "\n" into "\r\n"; the content keeps the "\r".
	if want := []string{"stdout hello-tty\r", "stdout to-stderr\r"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("log records %q, want %q", got, want)
	}
}
