package procfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nodekit-dev/nodekit/internal/cmdline"
)

// ClockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat (100 on
// every Linux architecture Go supports).
const ClockTicks = 100

// Proc is one process as read from /proc.
type Proc struct {
	PID, PPID int
	Args      []string // argv from /proc/PID/cmdline
}

// List returns every process of the machine that could be read: processes
// exiting while it looks, and kernel threads (no command line), are skipped.
func List() ([]Proc, error) {
	procs, err := cmdline.Processes()
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, p := range procs {
		st, err := ReadStat(p.PID)
		if err != nil {
			continue // gone
		}
		out = append(out, Proc{PID: p.PID, PPID: st.PPID, Args: p.Args})
	}
	return out, nil
}

// Stat is what the benchmarks read from /proc/PID/stat: state, parent, CPU
// times in clock ticks (the process's own, all its threads; and those of its
// children it has waited for) and the number of threads.
type Stat struct {
	State                        string
	PPID                         int
	UTime, STime, CUTime, CSTime uint64
	Threads                      int
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err // names the file
	}
	st, err := parseStat(string(data))
	if err != nil {
		return Stat{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return st, nil
}

// parseStat parses the text of /proc/PID/stat. The command name (field 2) may
// hold spaces and parentheses, so fields are counted after the last ')'.
func parseStat(stat string) (Stat, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("stat %.60q: no ')'", stat)
	}
	// f[0] is field 3 (state); field n is f[n-3].
	f := strings.Fields(stat[i+1:])
	if len(f) < 18 {
		return Stat{}, fmt.Errorf("stat %.60q: %d fields after the name, want at least 18", stat, len(f))
	}
	var s Stat
	s.State = f[0]
	var err error
	num := func(field int) uint64 {
		v, e := strconv.ParseUint(f[field-3], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("stat field %d %q: %w", field, f[field-3], e)
		}
		return v
	}
	s.PPID = int(num(4))
	s.UTime, s.STime = num(14), num(15)
	// cutime and cstime are signed in the kernel but never negative.
	s.CUTime, s.CSTime = num(16), num(17)
	s.Threads = int(num(20))
	return s, err
}

// Running reports whether pid exists and is not a zombie.
func Running(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && st.State != "Z"
}

// WaitGone polls every 20 ms until none of pids runs any more (gone, or a
// zombie), for up to d. It reports whether they are all gone.
func WaitGone(pids []int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	left := slices.Clone(pids)
	for {
		left = slices.DeleteFunc(left, func(pid int) bool { return !Running(pid) })
		if len(left) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CtxSwitches sums the voluntary and involuntary context switches of every
// thread of pid (/proc/PID/status of the process counts only the main thread).
func CtxSwitches(pid int) (uint64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("context switches: %w", err)
	}
	var sum uint64
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue // thread gone
		}
		sum += parseCtxSwitches(string(data))
	}
	return sum, nil
}

func parseCtxSwitches(status string) uint64 {
	var sum uint64
	for _, l := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err == nil {
			sum += n
		}
	}
	return sum
}

// Memory is a process's memory from /proc/PID/smaps_rollup, in KiB. Pss divides
// each shared page among the processes mapping it, so sums over processes are
// fair.
type Memory struct {
	Rss, Pss, Anon uint64
}

// ReadMemory reads Rss, Pss and Anonymous of pid.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return Memory{}, err // names the file
	}
	defer f.Close()
	m, err := parseSmapsRollup(f)
	if err != nil {
		return Memory{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}

func parseSmapsRollup(r io.Reader) (Memory, error) {
	var m Memory
	var havePss bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		var dst *uint64
		switch f[0] {
		case "Rss:":
			dst = &m.Rss
		case "Pss:":
			dst, havePss = &m.Pss, true
		case "Anonymous:":
			dst = &m.Anon
		default:
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("smaps_rollup %s: %w", f[0], err)
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("smaps_rollup: %w", err)
	}
	if !havePss {
		return Memory{}, errors.New("smaps_rollup: no Pss line")
	}
	return m, nil
}

// LoadAvg returns the machine's load averages over 1, 5 and 15 minutes as
// /proc/loadavg gives them: "0.92 1.35 1.61".
func LoadAvg() (string, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "", err // names the file
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "", fmt.Errorf("/proc/loadavg: %q: want 3 load averages", data)
	}
	return strings.Join(f[:3], " "), nil
}

// syscallNames names the x86-64 system calls idle Go threads block in.
var syscallNames = map[int]string{
	0: "read", 7: "poll", 23: "select", 35: "nanosleep", 61: "wait4", 202: "futex", 232: "epoll_wait",
	247: "waitid", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 441: "epoll_pwait2",
}

// ThreadSyscalls counts what the threads of pid are blocked in, from
// /proc/PID/task/*/syscall: system call names ("futex", "waitid"; "syscall N"
// for one it has no name for), "running" for threads not in a system call,
// "other" for threads blocked outside one.
func ThreadSyscalls(pid int) (map[string]int, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("thread system calls: %w", err)
	}
	counts := map[string]int{}
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "syscall"))
		if err != nil {
			continue // thread gone
		}
		counts[syscallName(string(data))]++
	}
	return counts, nil
}

// syscallName names the first field of /proc/PID/task/TID/syscall: a system
// call number, "running" or -1 (blocked outside a system call).
func syscallName(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "?"
	}
	if f[0] == "running" {
		return "running"
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 {
		return "other"
	}
	if name, ok := syscallNames[n]; ok {
		return name
	}
	return "syscall " + f[0]
}
