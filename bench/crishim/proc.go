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

// proc is one process as read from /proc.
type proc struct {
	pid, ppid int
	args      []string // argv from /proc/PID/cmdline
}

// listProcs returns every process of the machine that could be read (processes
// exiting while we look are skipped).
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
			continue // gone, or a kernel thread
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		ppid, err := parseStatPPID(string(stat))
		if err != nil {
			continue
		}
		out = append(out, proc{pid: pid, ppid: ppid, args: splitCmdline(cmdline)})
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

// parseStatPPID returns the parent pid from the text of /proc/PID/stat. The command
// name (field 2) may contain spaces and parentheses, so parsing starts after the
// last ')'.
func parseStatPPID(stat string) (int, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no ')'", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("stat %q: too few fields", stat)
	}
	return strconv.Atoi(f[1]) // f[0] is the state
}

// isMonitorOf reports whether args is a nodekit-monitor whose config lives under
// dir (`nodekit-monitor <state>/containers/<id>/monitor.json`).
func isMonitorOf(args []string, dir string) bool {
	return len(args) >= 2 && filepath.Base(args[0]) == "nodekit-monitor" &&
		strings.HasPrefix(args[1], strings.TrimSuffix(dir, "/")+"/")
}

// isDaemonOf reports whether args is a nodekit-cri or containerd whose command line
// names a path under dir (--listen, --config...).
func isDaemonOf(args []string, dir string) bool {
	if len(args) < 2 {
		return false
	}
	switch filepath.Base(args[0]) {
	case "nodekit-cri", "containerd":
	default:
		return false
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for _, a := range args[1:] {
		if _, v, ok := strings.Cut(a, "="); ok {
			a = v
		}
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// argValue returns the value of a Go-flag-style option (-name v, --name v,
// -name=v, --name=v) in args, or "".
func argValue(args []string, name string) string {
	for i := 1; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == args[i] {
			continue // not an option
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

// memory is a process's memory from /proc/PID/smaps_rollup, in KiB.
type memory struct {
	Pss, Rss uint64
}

// readMemory reads Pss and Rss of pid. Pss splits each shared page between the
// processes mapping it, so sums over processes are fair.
func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	return parseSmapsRollup(f)
}

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
		case "Pss:":
			dst, havePss = &m.Pss, true
		case "Rss:":
			dst = &m.Rss
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
// equally deep ones, the later-mounted first (so stacked mounts come off in order).
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
