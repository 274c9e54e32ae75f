package procfs

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses; fields after it as the kernel
	// writes them (pid 42, ppid 7, utime 1200, stime 300, cutime 15, cstime 5,
	// 23 threads).
	line := "42 (nodekit (x) y) S 7 42 42 0 -1 4194560 5000 0 0 0 1200 300 15 5 20 0 23 0 100 1000000 2000 18446744073709551615"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{State: "S", PPID: 7, UTime: 1200, STime: 300, CUTime: 15, CSTime: 5, Threads: 23}
	if got != want {
		t.Errorf("parseStat = %+v, want %+v", got, want)
	}
	// Command names may hold ") ".
	got, err = parseStat("1234 (a) b) (c) R 5 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0")
	if err != nil || got.PPID != 5 || got.State != "R" || got.Threads != 1 {
		t.Errorf("parseStat with ') ' in the name = %+v, %v; want ppid 5, state R, 1 thread", got, err)
	}
	for _, bad := range []string{"42 nodekit S 7", "1234 (x", "42 (x) S 7 1 2", "42 (x) S x 42 42 0 -1 4194560 5000 0 0 0 1200 300 15 5 20 0 23 0"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseSmapsRollup(t *testing.T) {
	in := `55d7c0000000-7ffc9b5fe000 ---p 00000000 00:00 0                          [rollup]
Rss:               33484 kB
Pss:               32370 kB
Pss_Dirty:           800 kB
Pss_Anon:           9420 kB
Anonymous:          9420 kB
Swap:                  0 kB
`
	got, err := parseSmapsRollup(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	// Pss_Dirty and Pss_Anon must not count as Pss.
	if want := (Memory{Rss: 33484, Pss: 32370, Anon: 9420}); got != want {
		t.Errorf("parseSmapsRollup = %+v, want %+v", got, want)
	}
	if _, err := parseSmapsRollup(strings.NewReader("Rss: 1 kB\n")); err == nil {
		t.Error("no Pss line: no error")
	}
	if _, err := parseSmapsRollup(strings.NewReader("Pss: x kB\n")); err == nil {
		t.Error("bad Pss value: no error")
	}
}

func TestParseCtxSwitches(t *testing.T) {
	status := "Name:\tnodekit-kubelet\nThreads:\t12\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n"
	if got := parseCtxSwitches(status); got != 157 {
		t.Errorf("parseCtxSwitches = %d, want 157", got)
	}
}

func TestSyscallName(t *testing.T) {
	for in, want := range map[string]string{
		"202 0xc000 0x80 0x0 0x0 0x0 0x0 0x7ffd 0x46a3e3\n": "futex",
		"247 0x3 0x5 0x0 0x4 0x0 0x0 0x7ffd 0x46a3e3\n":     "waitid",
		"running\n":       "running",
		"-1 0x7ffd 0x4\n": "other",
		"999 0x0 0x0 0x0": "syscall 999",
		"":                "?",
	} {
		if got := syscallName(in); got != want {
			t.Errorf("syscallName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSelf reads the test process itself.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	procs, err := List()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(procs, func(p Proc) bool { return p.PID == pid })
	if i < 0 {
		t.Fatalf("List has no process %d (the test)", pid)
	}
	if p := procs[i]; p.PPID != os.Getppid() || len(p.Args) == 0 || p.Args[0] != os.Args[0] {
		t.Errorf("List: %+v, want ppid %d and argv %q", p, os.Getppid(), os.Args)
	}
	st, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.Threads < 1 {
		t.Errorf("ReadStat(self) = %+v", st)
	}
	if !Running(pid) {
		t.Error("Running(self) = false")
	}
	m, err := ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.Pss == 0 || m.Rss < m.Anon {
		t.Errorf("ReadMemory(self) = %+v", m)
	}
	if _, err := CtxSwitches(pid); err != nil {
		t.Error(err)
	}
	counts, err := ThreadSyscalls(pid)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	if n < 1 {
		t.Errorf("ThreadSyscalls(self) = %v: no thread", counts)
	}
}

func TestLoadAvg(t *testing.T) {
	s, err := LoadAvg()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(s)
	if len(f) != 3 {
		t.Fatalf("LoadAvg = %q, want 3 fields", s)
	}
	for _, v := range f {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			t.Errorf("LoadAvg = %q: %v", s, err)
		}
	}
}

func TestGone(t *testing.T) {
	if _, err := ReadStat(1 << 30); err == nil {
		t.Error("ReadStat of a pid that cannot exist: no error")
	}
	if _, err := ReadMemory(1 << 30); err == nil {
		t.Error("ReadMemory of a pid that cannot exist: no error")
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Running(pid) {
		t.Fatalf("Running(%d) = false for a sleep just started", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: a zombie does not run.
	if !WaitGone([]int{pid}, 10*time.Second) || Running(pid) {
		t.Errorf("process %d still runs after WaitGone", pid)
	}
	cmd.Wait()
	start := time.Now()
	if WaitGone([]int{pid, os.Getpid()}, 50*time.Millisecond) {
		t.Error("WaitGone: the test process itself is gone")
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("WaitGone gave up before its time")
	}
}
