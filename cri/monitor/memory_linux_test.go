package monitor

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ussTarget is the memory budget of one running monitor: its unique set size,
// the pages it alone maps (heap, stacks, written data); about 790 KiB today. Its proportional set size
// also counts a share of the binary's pages, which depends on how many other
// processes map them at that moment (other tests' monitors), so it is reported but
// not checked: a fixed Pss bound failed CI at 903 KiB against 900.
const ussTarget = 1 << 20

// smapsRollup returns the Pss, Rss and Uss (private pages) of pid in bytes.
func smapsRollup(pid int) (pss, rss, uss int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		n, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Pss:":
			pss = n << 10
		case "Rss:":
			rss = n << 10
		case "Private_Clean:", "Private_Dirty:":
			uss += n << 10
		}
	}
	return pss, rss, uss, sc.Err()
}

// TestMonitorMemory runs 20 monitors of `sleep` containers, each with an attach
// socket and a stdin pipe as the shim starts them, and checks their mean unique
// set size against ussTarget.
func TestMonitorMemory(t *testing.T) {
	const n = 20
	envs := make([]*runcEnv, n)
	procs := make([]*Process, n)
	for i := range envs {
		envs[i] = newContainer(t, []string{"sh", "-c", "echo started; exec sleep 1000"}, nil)
		cfg := envs[i].config()
		cfg.AttachSocket = filepath.Join(envs[i].state, "attach.sock")
		cfg.Stdin = true
		procs[i] = envs[i].start(t, cfg)
		t.Cleanup(func() { syscall.Kill(procs[i].ContainerPid, syscall.SIGKILL) })
	}
	// Let every monitor copy its container's first line, so all have been through
	// their steady-state path once.
	for _, e := range envs {
		waitFor(t, "first log line", 10*time.Second, func() bool {
			data, _ := os.ReadFile(e.config().LogPath)
			return strings.Contains(string(data), "started")
		})
	}
	var sumPss, sumRss, sumUss, maxPss, maxUss int
	for _, p := range procs {
		pss, rss, uss, err := smapsRollup(p.MonitorPid)
		if err != nil {
			t.Fatal(err)
		}
		sumPss += pss
		sumRss += rss
		sumUss += uss
		maxPss = max(maxPss, pss)
		maxUss = max(maxUss, uss)
	}
	meanPss, meanUss := sumPss/n, sumUss/n
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", procs[0].MonitorPid))
	_, threads, _ := strings.Cut(string(status), "Threads:")
	threads, _, _ = strings.Cut(strings.TrimSpace(threads), "\n")
	t.Logf("%d monitors: mean Uss %d KiB (max %d KiB), mean Pss %d KiB (max %d KiB), mean Rss %d KiB, %s threads each",
		n, meanUss>>10, maxUss>>10, meanPss>>10, maxPss>>10, sumRss/n>>10, threads)
	if meanUss > ussTarget {
		t.Errorf("mean Uss %d KiB exceeds the target of %d KiB", meanUss>>10, ussTarget>>10)
	}
	for i, p := range procs {
		syscall.Kill(p.ContainerPid, syscall.SIGKILL)
		exit := envs[i].finish(t, p, envs[i].config(), 30*time.Second)
		if exit.Signal != 9 {
			t.Errorf("exit record %+v", exit)
		}
	}
}
