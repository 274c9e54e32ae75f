package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// proc is one process as read from /proc.
type proc struct {
	pid, ppid int
	args      []string // argv from /proc/PID/cmdline
}

// listProcs returns every process that could be read (processes exiting while
// we look, and kernel threads, are skipped).
func listProcs() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		st, err := parseStat(string(stat))
		if err != nil {
			continue
		}
		out = append(out, proc{pid: pid, ppid: st.ppid, args: splitCmdline(cmdline)})
	}
	return out, nil
}

// splitCmdline splits /proc/PID/cmdline (NUL-separated, NUL-terminated) into argv.
func splitCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// procStat is what the benchmark reads from /proc/PID/stat: state, parent and
// CPU times in clock ticks (the process's own, all its threads; and those of its
// children it has waited for).
type procStat struct {
	state                        string
	ppid                         int
	utime, stime, cutime, cstime uint64
	threads                      int
}

// parseStat parses the text of /proc/PID/stat. The command name (field 2) may
// hold spaces and parentheses, so fields are counted after the last ')'.
func parseStat(stat string) (procStat, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat %.60q: no ')'", stat)
	}
	// f[0] is field 3 (state); field n is f[n-3].
	f := strings.Fields(stat[i+1:])
	if len(f) < 18 {
		return procStat{}, fmt.Errorf("stat %.60q: %d fields after the name, want at least 18", stat, len(f))
	}
	var s procStat
	s.state = f[0]
	var err error
	num := func(field int) uint64 {
		v, e := strconv.ParseUint(f[field-3], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("stat field %d %q: %w", field, f[field-3], e)
		}
		return v
	}
	s.ppid = int(num(4))
	s.utime, s.stime = num(14), num(15)
	// cutime and cstime are signed in the kernel but never negative.
	s.cutime, s.cstime = num(16), num(17)
	s.threads = int(num(20))
	return s, err
}

func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(data))
}

// ctxSwitches sums the voluntary and involuntary context switches of every
// thread of pid (/proc/PID/status of the process counts only the main thread).
func ctxSwitches(pid int) (uint64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
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

// memory is a process's memory from /proc/PID/smaps_rollup, in KiB.
type memory struct {
	Rss, Pss, Anon uint64
}

func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	return parseSmapsRollup(f)
}

// parseSmapsRollup reads Rss, Pss and Anonymous. Pss divides each shared page
// among the processes mapping it, so sums over processes are fair.
func parseSmapsRollup(r io.Reader) (memory, error) {
	var m memory
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
			return memory{}, fmt.Errorf("smaps_rollup %s: %w", f[0], err)
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		return memory{}, err
	}
	if !havePss {
		return memory{}, errors.New("smaps_rollup: no Pss line")
	}
	return m, nil
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.state != "Z"
}

// isMonitorUnder reports whether args is a nodekit-monitor whose config lives
// under dir (`nodekit-monitor <state>/containers/<id>/monitor.json`).
func isMonitorUnder(args []string, dir string) bool {
	return len(args) >= 2 && filepath.Base(args[0]) == "nodekit-monitor" &&
		strings.HasPrefix(args[1], strings.TrimSuffix(dir, "/")+"/")
}

// isEmbeddedKubelet reports whether args is a nodekit-kubelet running the agent
// with its embedded runtime (not `get pods`, not `import`, no
// --container-runtime-endpoint).
func isEmbeddedKubelet(args []string) bool {
	if len(args) == 0 || filepath.Base(args[0]) != "nodekit-kubelet" {
		return false
	}
	if len(args) > 1 && (args[1] == "get" || args[1] == "import") {
		return false
	}
	return argValue(args, "container-runtime-endpoint") == ""
}

// argValue returns the value of a Go-flag-style option (-name v, --name v,
// -name=v, --name=v) in args, or "".
func argValue(args []string, name string) string {
	for i := 1; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == args[i] {
			continue
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	point, fstype string
}

func readMounts() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountinfo(f)
}

// parseMountinfo parses mountinfo lines:
// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
func parseMountinfo(r io.Reader) ([]mount, error) {
	var out []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 {
			continue
		}
		m := mount{point: unescapeOctal(f[4])}
		for i := 6; i < len(f)-1; i++ {
			if f[i] == "-" {
				m.fstype = f[i+1]
				break
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescapeOctal decodes mountinfo's \ooo escapes (\040 is a space).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsUnder returns the mount points strictly under dir, deepest first; among
// equally deep ones the later-mounted first, so stacked mounts come off in order.
func mountsUnder(mounts []mount, dir string) []string {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	type cand struct {
		point        string
		depth, order int
	}
	var c []cand
	for i, m := range mounts {
		if strings.HasPrefix(m.point, prefix) {
			c = append(c, cand{m.point, strings.Count(m.point, "/"), i})
		}
	}
	sort.SliceStable(c, func(i, j int) bool {
		if c[i].depth != c[j].depth {
			return c[i].depth > c[j].depth
		}
		return c[i].order > c[j].order
	})
	out := make([]string, len(c))
	for i := range c {
		out[i] = c[i].point
	}
	return out
}

// cgroupMountPoints returns the mount points of the cgroup hierarchies (v1 and v2).
func cgroupMountPoints(mounts []mount) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range mounts {
		if (m.fstype == "cgroup" || m.fstype == "cgroup2") && !seen[m.point] {
			seen[m.point] = true
			out = append(out, m.point)
		}
	}
	return out
}

// syscallNames names the x86-64 system calls idle Go threads block in.
var syscallNames = map[int]string{
	0: "read", 7: "poll", 23: "select", 35: "nanosleep", 61: "wait4", 202: "futex", 232: "epoll_wait",
	247: "waitid", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 441: "epoll_pwait2",
}

// threadSyscalls summarises what the threads of pid are blocked in, from
// /proc/PID/task/*/syscall: "futex 8, waitid 100" (most frequent first;
// "running" for threads not in a system call).
func threadSyscalls(pid int) string {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return "?"
	}
	counts := map[string]int{}
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, t.Name()))
		if err != nil {
			continue
		}
		counts[syscallName(string(data))]++
	}
	return formatCounts(counts)
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

// formatCounts renders counts as "a 3, b 1", largest first, then by name.
func formatCounts(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}
