package cri_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/numberedlog"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// TestCrashChurnShim drives a random CRI churn (pods run, stopped and
// removed; containers created, started, stopped, removed, and exiting by
// themselves with exit codes of their own) against the real nodekit-cri and
// kills it with SIGKILL at random points, between calls or in the middle of
// one, round after round. After each restart: every container the test knows
// of is there with its state, its PID if running, its exit code and start and
// finish times if exited (those that exited while the shim was down with
// their true exit code); logs of numbered lines have no gap (and are complete
// for containers that exited); nothing but the test's pods and containers is
// listed. At the end everything is removed and the node checked for leaks.
//
// NODEKIT_SOAK_ROUNDS sets the rounds (default 8), NODEKIT_CRASH_SEED replays
// a run.
func TestCrashChurnShim(t *testing.T) {
	h := newHarness(t)
	seed := testenv.CrashSeed(t)
	rounds := testenv.SoakRounds(t, 8)
	c := &shimChurn{t: t, h: h, rng: rand.New(rand.NewSource(seed)), ctrs: map[string]*churnCtr{}}
	c.daemon = h.startDaemon()
	// Registered before the restarts' own cleanups, this runs after the last
	// daemon stopped: if the test stopped half-way, a fresh daemon removes
	// every pod left, before the harness checks for leaks.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		h.conn.Close()
		h.startDaemon()
		ctx, cancel := c.ctx()
		defer cancel()
		sbs, err := h.rt.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
		if err != nil {
			t.Errorf("list the pods left: %v", err)
			return
		}
		for _, s := range sbs.Items {
			// Best effort: the harness's leak checks report what is left.
			_, _ = h.rt.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: s.GetId()})
			_, _ = h.rt.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: s.GetId()})
		}
	})
	out, err := exec.Command(testenv.Binary(t, "nodekit-cri"), "import", "--root", h.root, testenv.Image(t, "busybox")).CombinedOutput()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	c.run(rounds)
}

type churnPod struct {
	id    string
	cfg   *runtime.PodSandboxConfig
	ready bool
}

type churnCtr struct {
	id, name string
	pod      *churnPod
	lines    int   // a finisher's lines (0: a runner, which writes until stopped)
	code     int32 // a finisher's exit code
	state    runtime.ContainerState
	pid      int
	// Once exited: what the shim said first, to be kept.
	exitCode            int32
	startedAt, finished int64
}

type shimChurn struct {
	t      *testing.T
	h      *harness
	rng    *rand.Rand
	daemon *daemon
	pods   []*churnPod
	ctrs   map[string]*churnCtr
	next   int
	// figures
	survived, lost, codesLost, linesLost, leaks, interrupted int
}

func (c *shimChurn) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// --- operations: each returns an error instead of failing, so that it can be
// cut short by the kill.

func (c *shimChurn) runPod() (*churnPod, error) {
	c.next++
	name := fmt.Sprintf("p%d", c.next)
	cfg := podConfig(name)
	cfg.LogDirectory = filepath.Join(c.h.state, "..", "logs", name)
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.h.rt.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return &churnPod{cfg: cfg}, err
	}
	p := &churnPod{id: resp.PodSandboxId, cfg: cfg, ready: true}
	c.pods = append(c.pods, p)
	return p, nil
}

func (c *shimChurn) createContainer(p *churnPod) (*churnCtr, error) {
	c.next++
	ct := &churnCtr{name: fmt.Sprintf("c%d", c.next), pod: p, state: runtime.ContainerState_CONTAINER_CREATED}
	script := `i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.1; done`
	if c.rng.Intn(2) == 0 {
		ct.lines, ct.code = 1+c.rng.Intn(50), int32(c.rng.Intn(100))
		script = fmt.Sprintf(`i=0; while [ $i -lt %d ]; do i=$((i+1)); echo "line $i"; done; sleep %d.%d; exit %d`,
			ct.lines, c.rng.Intn(3), c.rng.Intn(10), ct.code)
	}
	cfg := containerConfig(ct.name, busybox, "sh", "-c", script)
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.h.rt.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
	if err != nil {
		return ct, err
	}
	ct.id = resp.ContainerId
	c.ctrs[ct.id] = ct
	return ct, nil
}

func (c *shimChurn) start(ct *churnCtr) error {
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.h.rt.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: ct.id}); err != nil {
		return err
	}
	ct.state = runtime.ContainerState_CONTAINER_RUNNING
	return nil
}

func (c *shimChurn) stop(ct *churnCtr) error {
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.h.rt.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: ct.id, Timeout: int64(c.rng.Intn(3))}); err != nil {
		return err
	}
	ct.state = runtime.ContainerState_CONTAINER_EXITED
	return nil
}

func (c *shimChurn) removeContainer(ct *churnCtr) error {
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.h.rt.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: ct.id}); err != nil {
		return err
	}
	delete(c.ctrs, ct.id)
	return nil
}

func (c *shimChurn) removePod(p *churnPod) error {
	ctx, cancel := c.ctx()
	defer cancel()
	if _, err := c.h.rt.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return err
	}
	p.ready = false
	for _, ct := range c.ctrs {
		if ct.pod == p && ct.state != runtime.ContainerState_CONTAINER_CREATED {
			ct.state = runtime.ContainerState_CONTAINER_EXITED
		}
	}
	if _, err := c.h.rt.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return err
	}
	for id, ct := range c.ctrs {
		if ct.pod == p {
			delete(c.ctrs, id)
		}
	}
	for i, q := range c.pods {
		if q == p {
			c.pods = append(c.pods[:i], c.pods[i+1:]...)
			break
		}
	}
	return nil
}

// randomOp picks and runs an operation; it returns its name and the pod or
// container it acted on, for the reconciliation after a kill.
func (c *shimChurn) randomOp() (string, *churnPod, *churnCtr, error) {
	var ready []*churnPod
	for _, p := range c.pods {
		if p.ready {
			ready = append(ready, p)
		}
	}
	by := map[runtime.ContainerState][]*churnCtr{}
	for _, ct := range c.ctrs {
		by[ct.state] = append(by[ct.state], ct)
	}
	choose := func(l []*churnCtr) *churnCtr {
		sortCtrs(l)
		return l[c.rng.Intn(len(l))]
	}
	for {
		switch op := c.rng.Intn(7); {
		case op == 0 && len(c.pods) < 3 || len(c.pods) == 0:
			p, err := c.runPod()
			return "RunPodSandbox", p, nil, err
		case op == 1 && len(ready) > 0 && len(c.ctrs) < 8:
			ct, err := c.createContainer(ready[c.rng.Intn(len(ready))])
			return "CreateContainer", ct.pod, ct, err
		case op == 2 && len(by[runtime.ContainerState_CONTAINER_CREATED]) > 0:
			ct := choose(by[runtime.ContainerState_CONTAINER_CREATED])
			return "StartContainer", ct.pod, ct, c.start(ct)
		case op == 3 && len(by[runtime.ContainerState_CONTAINER_RUNNING]) > 0:
			ct := choose(by[runtime.ContainerState_CONTAINER_RUNNING])
			return "StopContainer", ct.pod, ct, c.stop(ct)
		case op == 4 && len(by[runtime.ContainerState_CONTAINER_EXITED]) > 0:
			ct := choose(by[runtime.ContainerState_CONTAINER_EXITED])
			return "RemoveContainer", ct.pod, ct, c.removeContainer(ct)
		case op == 5 && len(c.pods) > 1:
			p := c.pods[c.rng.Intn(len(c.pods))]
			return "RemovePodSandbox", p, nil, c.removePod(p)
		case op == 6 && len(c.pods) < 3:
			p, err := c.runPod()
			return "RunPodSandbox", p, nil, err
		}
	}
}

func sortCtrs(l []*churnCtr) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].name < l[j-1].name; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// --- the rounds ---------------------------------------------------------------------

func (c *shimChurn) run(rounds int) {
	t := c.t
	start := time.Now()
	for r := 1; r <= rounds; r++ {
		for range c.rng.Intn(6) {
			if op, _, ct, err := c.randomOp(); err != nil {
				name := ""
				if ct != nil {
					name = ct.name + " " + ct.id
				}
				t.Fatalf("round %d: %s %s: %v", r, op, name, err)
			}
			c.refresh(fmt.Sprintf("round %d", r))
		}
		// The last call runs while the shim is killed (or just before, or
		// just after it returned).
		type result struct {
			op  string
			p   *churnPod
			ct  *churnCtr
			err error
		}
		done := make(chan result, 1)
		go func() {
			op, p, ct, err := c.randomOp()
			done <- result{op, p, ct, err}
		}()
		time.Sleep(time.Duration(c.rng.Intn(400)) * time.Millisecond)
		killedAt := time.Now()
		c.daemon.kill()
		res := <-done
		t.Logf("round %d: killed during or after %s (returned %s after the kill: %v)", r, res.op, time.Since(killedAt).Round(time.Millisecond), res.err)
		c.h.conn.Close()
		c.daemon = c.h.startDaemon()
		if res.err != nil {
			c.reconcile(res.op, res.p, res.ct)
		}
		if !c.check(fmt.Sprintf("round %d (%s)", r, res.op)) {
			break
		}
		c.survived++
	}
	perRound := time.Since(start) / time.Duration(max(c.survived, 1))

	// The end: remove everything, then nothing may be left.
	for len(c.pods) > 0 {
		if err := c.removePod(c.pods[0]); err != nil {
			t.Fatalf("remove pod %s: %v", c.pods[0].id, err)
		}
	}
	c.leaks += c.countLeaks()
	summary := fmt.Sprintf("CRASH-SOAK shim rounds=%d survived=%d containers_lost=%d exit_codes_lost=%d log_lines_lost=%d leaks=%d starts_interrupted=%d time_per_round=%s",
		rounds, c.survived, c.lost, c.codesLost, c.linesLost, c.leaks, c.interrupted, perRound.Round(100*time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)
}

// reconcile learns the outcome of a call the kill cut short.
func (c *shimChurn) reconcile(op string, p *churnPod, ct *churnCtr) {
	t := c.t
	ctx, cancel := c.ctx()
	defer cancel()
	switch op {
	case "RunPodSandbox":
		sbs, err := c.h.rt.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sbs.Items {
			if s.GetMetadata().GetName() == p.cfg.GetMetadata().GetName() {
				p.id, p.ready = s.GetId(), s.GetState() == runtime.PodSandboxState_SANDBOX_READY
				c.pods = append(c.pods, p)
				if !p.ready { // a half-made pod: it must go cleanly
					if err := c.removePod(p); err != nil {
						t.Errorf("remove the pod whose RunPodSandbox was cut short: %v", err)
					}
				}
			}
		}
	case "CreateContainer":
		cs, err := c.h.rt.ListContainers(ctx, &runtime.ListContainersRequest{Filter: &runtime.ContainerFilter{PodSandboxId: p.id}})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range cs.Containers {
			if s.GetMetadata().GetName() == ct.name {
				ct.id = s.GetId()
				c.ctrs[ct.id] = ct
			}
		}
	case "StartContainer", "StopContainer", "RemoveContainer":
		resp, err := c.h.rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: ct.id})
		if err != nil {
			if op == "RemoveContainer" {
				delete(c.ctrs, ct.id)
				return
			}
			t.Errorf("container %s after a %s cut short: %v", ct.name, op, err)
			c.lost++
			delete(c.ctrs, ct.id)
			return
		}
		st := resp.GetStatus()
		if op == "StartContainer" && st.GetState() == runtime.ContainerState_CONTAINER_EXITED && st.GetStartedAt() == 0 {
			if ct.lines > 0 && st.GetExitCode() == ct.code && ct.code != 0 {
				// It ran (its own exit code), yet has no start time.
				t.Errorf("container %s (%s): after a StartContainer cut short it exited with its own code %d but has no start time (finished %d)",
					ct.name, ct.id[:12], st.GetExitCode(), st.GetFinishedAt())
				c.codesLost++
			} else {
				// The start was cut short and failed: the container never ran.
				t.Logf("container %s: StartContainer cut short: %v exit %d %s %q", ct.name, st.GetState(), st.GetExitCode(), st.GetReason(), st.GetMessage())
				c.interrupted++
			}
			ct.lines = -1 // no log to check
		}
		ct.state = st.GetState()
	case "RemovePodSandbox":
		if _, err := c.h.rt.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{PodSandboxId: p.id}); err != nil {
			for id, ct := range c.ctrs {
				if ct.pod == p {
					delete(c.ctrs, id)
				}
			}
			for i, q := range c.pods {
				if q == p {
					c.pods = append(c.pods[:i], c.pods[i+1:]...)
					break
				}
			}
			return
		}
		if err := c.removePod(p); err != nil {
			t.Errorf("remove the pod whose RemovePodSandbox was cut short: %v", err)
		}
	}
}

// refresh records what changed on its own: finishers that exited.
func (c *shimChurn) refresh(what string) {
	for _, ct := range c.ctrs {
		if ct.state == runtime.ContainerState_CONTAINER_RUNNING {
			ctx, cancel := c.ctx()
			resp, err := c.h.rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: ct.id, Verbose: true})
			cancel()
			if err != nil {
				c.t.Errorf("%s: status of %s: %v", what, ct.name, err)
				continue
			}
			if ct.pid == 0 {
				var info struct {
					Pid int `json:"pid"`
				}
				if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
					c.t.Errorf("%s: status of %s: info: %v", what, ct.name, err)
				}
				ct.pid = info.Pid
			}
			if resp.GetStatus().GetState() == runtime.ContainerState_CONTAINER_EXITED {
				ct.state = runtime.ContainerState_CONTAINER_EXITED
			}
		}
	}
}

// check compares the restarted shim with the model. false: the test cannot go
// on (reported).
func (c *shimChurn) check(what string) bool {
	t := c.t
	ctx, cancel := c.ctx()
	defer cancel()
	sbs, err := c.h.rt.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("%s: list sandboxes: %v", what, err)
		return false
	}
	listed := map[string]runtime.PodSandboxState{}
	for _, s := range sbs.Items {
		listed[s.GetId()] = s.GetState()
	}
	for _, p := range c.pods {
		st, ok := listed[p.id]
		want := runtime.PodSandboxState_SANDBOX_NOTREADY
		if p.ready {
			want = runtime.PodSandboxState_SANDBOX_READY
		}
		if !ok || st != want {
			t.Errorf("%s: sandbox %s is %v (listed %v), want %v", what, p.id[:12], st, ok, want)
			c.lost++
		}
		delete(listed, p.id)
	}
	for id := range listed {
		t.Errorf("%s: sandbox %s listed, unknown to the test", what, id[:12])
		c.leaks++
	}
	cs, err := c.h.rt.ListContainers(ctx, &runtime.ListContainersRequest{})
	if err != nil {
		t.Errorf("%s: list containers: %v", what, err)
		return false
	}
	known := map[string]bool{}
	for _, s := range cs.Containers {
		known[s.GetId()] = true
		if c.ctrs[s.GetId()] == nil {
			t.Errorf("%s: container %s (%s) listed, unknown to the test", what, s.GetId()[:12], s.GetMetadata().GetName())
			c.leaks++
		}
	}
	for id, ct := range c.ctrs {
		if !known[id] {
			t.Errorf("%s: container %s (%s, %v) lost", what, ct.name, id[:12], ct.state)
			c.lost++
			delete(c.ctrs, id)
			continue
		}
		resp, err := c.h.rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id, Verbose: true})
		if err != nil {
			t.Errorf("%s: status of %s: %v", what, ct.name, err)
			c.lost++
			continue
		}
		st := resp.GetStatus()
		var info struct {
			Pid int `json:"pid"`
		}
		if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
			t.Errorf("%s: status of %s: info: %v", what, ct.name, err)
			continue
		}
		switch ct.state {
		case runtime.ContainerState_CONTAINER_CREATED:
			if st.GetState() != runtime.ContainerState_CONTAINER_CREATED {
				t.Errorf("%s: created container %s is %v", what, ct.name, st.GetState())
				c.lost++
			}
		case runtime.ContainerState_CONTAINER_RUNNING:
			switch {
			case st.GetState() == runtime.ContainerState_CONTAINER_RUNNING:
				if ct.pid != 0 && info.Pid != ct.pid {
					t.Errorf("%s: running container %s has pid %d, had %d", what, ct.name, info.Pid, ct.pid)
					c.lost++
				}
				ct.pid = info.Pid
			case st.GetState() == runtime.ContainerState_CONTAINER_EXITED && ct.lines > 0:
				ct.state = runtime.ContainerState_CONTAINER_EXITED // a finisher finished
			default:
				t.Errorf("%s: running container %s (%s, runner: %v) is %v exit %d %s %q", what, ct.name, id[:12], ct.lines == 0, st.GetState(), st.GetExitCode(), st.GetReason(), st.GetMessage())
				c.lost++
				ct.state = st.GetState()
			}
		}
		if ct.state == runtime.ContainerState_CONTAINER_EXITED {
			if st.GetState() != runtime.ContainerState_CONTAINER_EXITED {
				t.Errorf("%s: exited container %s is %v", what, ct.name, st.GetState())
				c.lost++
				continue
			}
			if ct.finished == 0 {
				ct.exitCode, ct.startedAt, ct.finished = st.GetExitCode(), st.GetStartedAt(), st.GetFinishedAt()
				if ct.lines > 0 && ct.startedAt != 0 && ct.exitCode != ct.code && !stoppedEarly(st) {
					t.Errorf("%s: finisher %s exited with %d, want %d (%s %q)", what, ct.name, ct.exitCode, ct.code, st.GetReason(), st.GetMessage())
					c.codesLost++
				}
				if ct.finished < ct.startedAt {
					t.Errorf("%s: container %s finished (%d) before it started (%d)", what, ct.name, ct.finished, ct.startedAt)
					c.codesLost++
				}
			} else if st.GetExitCode() != ct.exitCode || st.GetFinishedAt() != ct.finished || st.GetStartedAt() != ct.startedAt {
				t.Errorf("%s: exited container %s: exit %d started %d finished %d, was exit %d started %d finished %d",
					what, ct.name, st.GetExitCode(), st.GetStartedAt(), st.GetFinishedAt(), ct.exitCode, ct.startedAt, ct.finished)
				c.codesLost++
			}
		}
		c.checkLog(what, ct, st)
	}
	return true
}

// stoppedEarly: the container was stopped (killed by a signal) before it
// could exit by itself.
func stoppedEarly(st *runtime.ContainerStatus) bool {
	return st.GetExitCode() == 137 || st.GetExitCode() == 143
}

func (c *shimChurn) checkLog(what string, ct *churnCtr, st *runtime.ContainerStatus) {
	if ct.lines < 0 || st.GetStartedAt() == 0 {
		return
	}
	l, err := numberedlog.Read(st.GetLogPath())
	if err != nil {
		c.t.Errorf("%s: log of %s: %v", what, ct.name, err)
		c.linesLost++
		return
	}
	if l.Malformed > 0 {
		c.t.Errorf("%s: log of %s: %d records that do not parse", what, ct.name, l.Malformed)
	}
	for _, g := range l.Gaps {
		c.t.Errorf("%s: log of %s: line %d after line %d", what, ct.name, g.Got, g.After)
	}
	c.linesLost += l.Lost(0)
	if ct.lines > 0 && st.GetState() == runtime.ContainerState_CONTAINER_EXITED && !stoppedEarly(st) && l.Last != ct.lines {
		c.t.Errorf("%s: log of finisher %s ends at line %d, want %d", what, ct.name, l.Last, ct.lines)
		c.linesLost += max(ct.lines-l.Last, 0)
	}
}

// countLeaks counts (and reports) what is left once every pod was removed.
func (c *shimChurn) countLeaks() int {
	t, h := c.t, c.h
	n := 0
	waitFor(t, "monitors to exit", time.Minute, func() bool { return len(leakcheck.Monitors(t, h.state)) == 0 })
	if m := leakcheck.Mounts(t, filepath.Dir(h.root)); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
		n += len(m)
	}
	if entries, _ := os.ReadDir(filepath.Join(h.state, "runc")); len(entries) > 0 {
		t.Errorf("runc state left: %d", len(entries))
		n += len(entries)
	}
	for _, m := range leakcheck.CgroupMounts(t) {
		entries, _ := os.ReadDir(filepath.Join(m, h.cgroupParent))
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("cgroup left: %s", filepath.Join(m, h.cgroupParent, e.Name()))
				n++
			}
		}
	}
	return n
}
