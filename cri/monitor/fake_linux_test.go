package monitor

import (
	"github.com/nodekit-dev/nodekit/internal/testenv"

	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodekit-dev/nodekit/cri/crilog"
)

// fakeRuntime is a runc stand-in: `run` starts the shell script in
// <bundle>/script as an orphan with the runtime's stdio and writes its pid,
// or fails like runc when the script is "fail"; `delete` records its arguments in
// <bundle>/deleted.
const fakeRuntime = `#!/bin/sh
while [ $# -gt 0 ]; do
	case "$1" in
	run|delete) cmd=$1; shift; break;;
	*) echo "$1" >> "$FAKE_GLOBAL_ARGS"; shift;;
	esac
done
while [ $# -gt 1 ]; do
	case "$1" in
	--pid-file) pidfile=$2; shift 2;;
	--bundle) bundle=$2; shift 2;;
	*) shift;;
	esac
done
id=$1
case $cmd in
run)
	if [ "$(cat "$bundle/script")" = fail ]; then
		echo 'time="2024-01-01T00:00:00Z" level=error msg="runc run failed: exec: \"nope\": executable file not found in $PATH"' >&2
		exit 1
	fi
	# Like runc, leave the process behind unreaped: it is orphaned and so becomes
	# the monitor's child.
	( sh -c 'echo $$ > "$1"; exec sh "$2"' x "$pidfile" "$bundle/script" & )
	while [ ! -s "$pidfile" ]; do :; done
	if [ -e "$bundle/exit-first" ]; then
		# Exit only once the container has exited (is a zombie of the monitor).
		pid=$(cat "$pidfile")
		while [ -e "/proc/$pid" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat"; do :; done
	fi
	;;
delete)
	echo "delete $id" >> "$FAKE_DELETED"
	;;
esac
`

type fakeEnv struct {
	dir, bundle, deleted string
	cfg                  Config
}

func newFake(t *testing.T, script string) *fakeEnv {
	t.Helper()
	dir := t.TempDir()
	f := &fakeEnv{dir: dir, bundle: filepath.Join(dir, "bundle"), deleted: filepath.Join(dir, "deleted")}
	runtime := filepath.Join(dir, "runtime")
	if err := os.WriteFile(runtime, []byte(strings.ReplaceAll(strings.ReplaceAll(fakeRuntime,
		"$FAKE_GLOBAL_ARGS", filepath.Join(dir, "global-args")), "$FAKE_DELETED", f.deleted)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.bundle, "script"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	f.cfg = Config{
		ID: "fake1", Bundle: f.bundle, Runtime: runtime, RuntimeRoot: filepath.Join(dir, "root"),
		RuntimeArgs: []string{"--debug"},
		LogPath:     filepath.Join(dir, "logs", "c", "0.log"), LogMaxLine: 8,
		ExitFile: filepath.Join(dir, "exit.json"), PidFile: filepath.Join(dir, "pid"),
		DeleteOnExit: true, CgroupRoot: filepath.Join(dir, "cgroup"),
	}
	return f
}

func (f *fakeEnv) start(t *testing.T) *Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := Start(ctx, monitorBinary(t), f.dir, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(p.ContainerPid, syscall.SIGKILL) })
	return p
}

// logRecords returns the records of the log as "stream tag content".
func logRecords(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	for line := range bytes.Lines(data) {
		e, err := crilog.ParseLine(line)
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		tag := "F"
		if e.Partial {
			tag = "P"
		}
		recs = append(recs, e.Stream+" "+tag+" "+string(e.Content))
	}
	return recs
}

func TestFakeRuntimeExitAndLog(t *testing.T) {
	f := newFake(t, "echo out; echo err >&2; echo 0123456789; printf tail; exit 3\n")
	before := time.Now()
	p := f.start(t)
	if p.ContainerPid <= 0 || p.MonitorPid <= 0 {
		t.Fatalf("pids %+v", p)
	}
	exit := waitExit(t, f.cfg.ExitFile, 10*time.Second)
	st := reap(t, p, 10*time.Second)
	if !st.Success() {
		t.Errorf("monitor exited with %v", st)
	}
	if exit.Pid != p.ContainerPid || exit.ExitCode != 3 || exit.Signal != 0 || exit.OOMKilled || exit.Error != "" {
		t.Errorf("exit record %+v", exit)
	}
	if exit.FinishedAt.Before(before) || exit.FinishedAt.After(time.Now()) {
		t.Errorf("FinishedAt %v not within the test", exit.FinishedAt)
	}
	var stdout, stderr []string
	for _, r := range logRecords(t, f.cfg.LogPath) {
		if strings.HasPrefix(r, "stdout") {
			stdout = append(stdout, r)
		} else {
			stderr = append(stderr, r)
		}
	}
	wantOut := []string{"stdout F out", "stdout P 01234567", "stdout F 89", "stdout F tail"}
	if strings.Join(stdout, "|") != strings.Join(wantOut, "|") || strings.Join(stderr, "|") != "stderr F err" {
		t.Errorf("log records stdout %q stderr %q, want %q and [stderr F err]", stdout, stderr, wantOut)
	}
	if data, _ := os.ReadFile(f.deleted); string(data) != "delete fake1\n" {
		t.Errorf("runtime delete calls: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(f.dir, "global-args")); string(data) != "--root\n"+f.cfg.RuntimeRoot+"\n--debug\n--root\n"+f.cfg.RuntimeRoot+"\n--debug\n" {
		t.Errorf("global runtime flags of run and delete: %q", data)
	}
	if fi, err := os.Stat(f.cfg.LogPath); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("log file: %v, %v", fi, err)
	}
}

func TestFakeRuntimeStartError(t *testing.T) {
	f := newFake(t, "fail")
	_, err := Start(context.Background(), monitorBinary(t), f.dir, f.cfg)
	want := `exec: "nope": executable file not found in $PATH`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Start = %v, want an error containing %q", err, want)
	}
	if _, err := os.Stat(f.cfg.ExitFile); !os.IsNotExist(err) {
		t.Errorf("exit file after a failed start: %v", err)
	}
	if _, err := os.Stat(f.deleted); !os.IsNotExist(err) {
		t.Errorf("runtime delete ran after a failed start: %v", err)
	}
}

func TestFakeRuntimeSignalAndOOM(t *testing.T) {
	f := newFake(t, "")
	// A fake memory cgroup tree for the cgroup the container process will be in
	// (the test's own: the fake runtime does not move it).
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	counter, err := oomFile(f.cfg.CgroupRoot, self)
	if err != nil {
		testenv.Skip(t, "no memory cgroup for this process: "+err.Error())
	}
	if err := os.MkdirAll(filepath.Dir(counter), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(counter, []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The "container" waits to be told, then bumps the counter and is SIGKILLed.
	script := "read x < " + filepath.Join(f.dir, "go") + "; printf 'under_oom 0\\noom_kill 5\\n' > " + counter + "; kill -9 $$\n"
	if err := syscall.Mkfifo(filepath.Join(f.dir, "go"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.bundle, "script"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	f.cfg.LogPath = "" // discard
	p := f.start(t)
	if err := os.WriteFile(filepath.Join(f.dir, "go"), []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exit := waitExit(t, f.cfg.ExitFile, 10*time.Second)
	reap(t, p, 10*time.Second)
	if exit.ExitCode != 137 || exit.Signal != 9 || !exit.OOMKilled {
		t.Errorf("exit record %+v, want 137, signal 9, OOM killed", exit)
	}
}

func TestFakeRuntimeSIGTERMForwarded(t *testing.T) {
	f := newFake(t, `sleep 100 >/dev/null 2>&1 & pid=$!
trap 'kill $pid; echo got-term; exit 7' TERM
echo ready
wait
`)
	p := f.start(t)
	waitFor(t, "container ready", 10*time.Second, func() bool {
		data, _ := os.ReadFile(f.cfg.LogPath)
		return bytes.Contains(data, []byte("ready"))
	})
	// Signals of the caller's session do not reach the monitor...
	if sid, _ := unix.Getsid(p.MonitorPid); sid != p.MonitorPid {
		t.Errorf("monitor session %d, want its own (%d)", sid, p.MonitorPid)
	}
	if err := syscall.Kill(p.MonitorPid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// ...and SIGTERM is forwarded to the container.
	if err := syscall.Kill(p.MonitorPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exit := waitExit(t, f.cfg.ExitFile, 10*time.Second)
	reap(t, p, 10*time.Second)
	if exit.ExitCode != 7 {
		t.Errorf("exit record %+v, want exit code 7 from the TERM trap", exit)
	}
	recs := logRecords(t, f.cfg.LogPath)
	if got := strings.Join(recs, "|"); got != "stdout F ready|stdout F got-term" {
		t.Errorf("log records %q", recs)
	}
}

func TestStartReportsMonitorFailures(t *testing.T) {
	dir := t.TempDir()
	script := func(body string) string {
		p := filepath.Join(dir, "monitor-"+strings.Fields(body)[0])
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := Config{ID: "x", Bundle: "/b", Runtime: "/r", ExitFile: "/e", PidFile: "/p"}
	for _, tc := range []struct {
		name, binary, wantErr string
		timeout               time.Duration
	}{
		{"reported error", script(`echo '{"error":"boom"}' >&3; exit 1`), "start container x: boom", 10 * time.Second},
		{"silent death", script("exit 2"), "monitor exited without reporting: exit status 2", 10 * time.Second},
		{"hang", script("exec sleep 100"), context.DeadlineExceeded.Error(), 300 * time.Millisecond},
		{"no binary", filepath.Join(dir, "missing"), "no such file", 10 * time.Second},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
		p, err := Start(ctx, tc.binary, dir, cfg)
		cancel()
		if p != nil || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Start = %+v, %v; want error containing %q", tc.name, p, err, tc.wantErr)
		}
	}
	if _, err := ReadConfig(filepath.Join(dir, ConfigFile)); err != nil {
		t.Errorf("config file written by Start: %v", err)
	}
	if _, err := Start(context.Background(), "/bin/true", dir, Config{}); err == nil {
		t.Error("Start accepted an invalid config")
	}
}

func TestFakeRuntimeLogWriteFailure(t *testing.T) {
	f := newFake(t, "echo lost; exit 0\n")
	f.cfg.LogPath = "/dev/full" // every write fails with ENOSPC
	p := f.start(t)
	exit := waitExit(t, f.cfg.ExitFile, 10*time.Second)
	reap(t, p, 10*time.Second)
	if exit.ExitCode != 0 || !strings.Contains(exit.Error, "log write failed") || !strings.Contains(exit.Error, "no space left") {
		t.Errorf("exit record %+v, want exit code 0 and a log write error", exit)
	}
}

func TestFakeRuntimeDrainIsBounded(t *testing.T) {
	f := newFake(t, "")
	leftover := filepath.Join(f.dir, "leftover")
	// A process left behind holds stdout open after the init exits.
	script := "sleep 100 & echo $! > " + leftover + "; echo done; exit 4\n"
	if err := os.WriteFile(filepath.Join(f.bundle, "script"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// The leftover outlives the monitor: adopt it, to kill and reap it.
	adoptOrphans(t)
	t.Cleanup(func() {
		data, _ := os.ReadFile(leftover)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			_, _ = unix.Wait4(pid, nil, 0, nil)
		}
	})
	p := f.start(t)
	exit := waitExit(t, f.cfg.ExitFile, 10*time.Second)
	reap(t, p, 10*time.Second)
	if exit.ExitCode != 4 {
		t.Errorf("exit record %+v", exit)
	}
	if recs := logRecords(t, f.cfg.LogPath); strings.Join(recs, "|") != "stdout F done" {
		t.Errorf("log records %q", recs)
	}
}

func TestFakeRuntimeReopensLogOnSIGUSR1(t *testing.T) {
	f := newFake(t, "")
	fifo := filepath.Join(f.dir, "go")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.bundle, "script"), []byte("echo one; read x < "+fifo+"; echo two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := f.start(t)
	waitFor(t, "first line", 10*time.Second, func() bool {
		data, _ := os.ReadFile(f.cfg.LogPath)
		return bytes.Contains(data, []byte("one"))
	})
	rotated := f.cfg.LogPath + ".1"
	if err := os.Rename(f.cfg.LogPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p.MonitorPid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the log to be reopened", 10*time.Second, func() bool {
		_, err := os.Stat(f.cfg.LogPath)
		return err == nil
	})
	if err := os.WriteFile(fifo, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exit := waitExit(t, f.cfg.ExitFile, 10*time.Second)
	reap(t, p, 10*time.Second)
	if exit.ExitCode != 0 || exit.Error != "" {
		t.Errorf("exit record %+v", exit)
	}
	if got := strings.Join(logRecords(t, rotated), "|"); got != "stdout F one" {
		t.Errorf("rotated log holds %q", got)
	}
	if got := strings.Join(logRecords(t, f.cfg.LogPath), "|"); got != "stdout F two" {
		t.Errorf("new log holds %q", got)
	}
}

func TestFakeRuntimeInitExitsBeforeRuntime(t *testing.T) {
	f := newFake(t, "echo quick; exit 5\n")
	if err := os.WriteFile(filepath.Join(f.bundle, "exit-first"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := f.start(t)
	exit := waitExit(t, f.cfg.ExitFile, 10*time.Second)
	reap(t, p, 10*time.Second)
	if exit.ExitCode != 5 || exit.Error != "" {
		t.Errorf("exit record %+v, want exit code 5", exit)
	}
	if recs := logRecords(t, f.cfg.LogPath); strings.Join(recs, "|") != "stdout F quick" {
		t.Errorf("log records %q", recs)
	}
}
