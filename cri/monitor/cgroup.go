package monitor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// oomFile returns the file holding the oom_kill counter of the memory cgroup named
// in procCgroup (the content of /proc/<pid>/cgroup), below the cgroup mounts at
// root: memory.oom_control of the v1 memory hierarchy if the process has one, else
// memory.events of the v2 unified hierarchy.
func oomFile(root string, procCgroup []byte) (string, error) {
	var v2 string
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return filepath.Join(root, "memory", parts[2], "memory.oom_control"), nil
			}
		}
	}
	if v2 != "" {
		return filepath.Join(root, v2, "memory.events"), nil
	}
	return "", fmt.Errorf("no memory cgroup in %q", procCgroup)
}

// readOOMKills reads the "oom_kill N" counter of a memory.oom_control (v1) or
// memory.events (v2) file.
func readOOMKills(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || name != "oom_kill" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: oom_kill %q: %w", path, value, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: no oom_kill counter", path)
}

// oomCounter is the oom_kill counter of a container's memory cgroup.
type oomCounter struct {
	path  string
	start uint64
	err   error // why the counter cannot be read; OOM kills then go undetected
}

// newOOMCounter finds the memory cgroup of pid and reads its counter.
func newOOMCounter(root string, pid int) *oomCounter {
	c := &oomCounter{}
	procCgroup, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err == nil {
		c.path, err = oomFile(root, procCgroup)
	}
	if err == nil {
		c.start, err = readOOMKills(c.path)
	}
	c.err = err
	return c
}

// killed reports whether the counter grew since start.
func (c *oomCounter) killed() bool {
	if c.err != nil {
		return false
	}
	n, err := readOOMKills(c.path)
	return err == nil && n > c.start
}
