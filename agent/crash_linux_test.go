package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	criclient "k8s.io/cri-client/pkg"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/numberedlog"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testnet"
)

// TestCrashChurn kills bin/nodekit-kubelet with SIGKILL at random points of a
// churn of static pods (added, updated, deleted with a preStop hook and a
// grace period, pulled from a throttled registry, jobs that exit) and starts
// it again, round after round. Once it settles after each restart: every
// container that should run kept its ID and PID and was started once;
// finished containers kept their exit codes; pods whose manifest went are
// gone (sandboxes, containers, pod and log directories, cgroups, mounts) and,
// if their container had started, their preStop hook ran exactly once and the
// container got SIGTERM exactly once; logs of numbered lines have no gap.
//
// Two modes: "embedded" (the agent's own shim, which dies with it) and
// "remote" (a separate bin/nodekit-cri, which keeps running).
// NODEKIT_SOAK_ROUNDS sets the rounds of each mode (default 4),
// NODEKIT_CRASH_SEED replays a run.
func TestCrashChurn(t *testing.T) {
	testenv.RequireRoot(t)
	seed := testenv.CrashSeed(t)
	rounds := testenv.SoakRounds(t, 4)
	for i, mode := range []string{"embedded", "remote"} {
		t.Run(mode, func(t *testing.T) {
			c := newCrashChurn(t, mode == "embedded", seed+int64(i))
			c.run(rounds)
		})
	}
}

// crashInst is one version of a static pod manifest: a pod instance, told
// apart by its token (its UID is learned from the agent).
type crashInst struct {
	name, token string
	kind        string // "app", "pull" or "job"
	steady      bool   // never changed by the churn
	exitCode    int32  // of a job
	uid         types.UID
	removed     bool // its manifest went (deleted, or replaced by an update)
	containerID string
	pid         int
	// reported are the problems already reported (and counted) of this
	// instance: each is counted once, not at every later round.
	reported map[string]bool
}

// once reports whether problem is new for in (and records it).
func (in *crashInst) once(problem string) bool {
	if in.reported[problem] {
		return false
	}
	if in.reported == nil {
		in.reported = map[string]bool{}
	}
	in.reported[problem] = true
	return true
}

type crashChurn struct {
	t        *testing.T
	h        *harness
	embedded bool
	rng      *rand.Rand
	reg      *slowRegistry
	kubelet  *process
	rt       internalapi.RuntimeService
	insts    []*crashInst
	next     int
	// figures
	survived, containersLost, exitCodesLost, linesLost, leaks, hookErrs int
	kills                                                               map[string]int
}

func newCrashChurn(t *testing.T, embedded bool, seed int64) *crashChurn {
	h := prepare(t, "nkcc-")
	c := &crashChurn{t: t, h: h, embedded: embedded, rng: rand.New(rand.NewSource(seed)), kills: map[string]int{}}
	// 1 MiB at 512 KiB/s: a pull takes about two seconds.
	c.reg = newSlowRegistry(t, 1<<20, 512<<10)
	if !embedded {
		d := newDaemons(t, h)
		d.shim.start()
		c.kubelet, c.rt = d.kubelet, d.rt
		return c
	}
	kubeletBin := testenv.Binary(t, "nodekit-kubelet")
	config := filepath.Join(h.base, "kubelet.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupRoot: "+h.cgroupRoot+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kubeletBin, "import", "--root-dir", h.rootDir, testenv.Image(t, "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("nodekit-kubelet import: %v\n%s", err, out)
	}
	k := &process{t: t, name: "nodekit-kubelet", bin: kubeletBin, base: h.base, args: []string{
		"--config", config, "--root-dir", h.rootDir, "--pod-manifest-path", h.manifests, "--pod-logs-dir", h.podLogs,
		"--hostname-override", nodeName, "--node-ip", "127.0.0.1",
		"--address", "127.0.0.1", "--port", "0", "--healthz-port", "0", "--log-level", "debug",
		"--runtime", testenv.Binary(t, "runc"), "--monitor", testenv.Binary(t, "nodekit-monitor"),
		"--runtime-state-dir", h.shimState,
		"--cni-conf-dir", h.net.ConfDir, "--cni-bin-dir", strings.Join(testnet.BinDirs, ":"),
		"--registry-config", filepath.Join(h.base, "registries.toml"),
	}}
	k.ready = func() bool { return localPods(h.rootDir) != nil }
	h.dumps = append(h.dumps, dump{"daemon logs", k.log})
	c.kubelet = k
	t.Cleanup(func() {
		if err := k.signal(syscall.SIGTERM, 2*time.Minute); err != nil {
			t.Error(err)
		}
		if m := leakcheck.Monitors(t, h.shimState); len(m) > 0 {
			// The test failed before it removed its pods: stop them all.
			os.RemoveAll(h.manifests)
			k.start("--stop-pods-on-exit")
			if err := k.signal(syscall.SIGTERM, 2*time.Minute); err != nil {
				t.Error(err)
			}
		}
	})
	return c
}

func (c *crashChurn) connectEmbedded() {
	if !c.embedded || c.rt != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + filepath.Join(c.h.rootDir, "runtime.sock")).
		WithConnectionTimeout(time.Minute).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		c.t.Fatalf("connect to the embedded runtime: %v", err)
	}
	c.rt = rt
}

// --- manifests ----------------------------------------------------------------

const crashGrace = 4

func (c *crashChurn) manifest(in *crashInst, image string) *v1.Pod {
	h := c.h
	host := "/host/" + in.token
	var script string
	switch in.kind {
	case "job":
		script = fmt.Sprintf(`echo start >> %[1]s.start; for i in 1 2 3 4 5; do echo "line $i"; done; sleep 1; exit %[2]d`, host, in.exitCode)
	default:
		script = fmt.Sprintf(`echo start >> %[1]s.start; trap 'echo term >> %[1]s.term; sleep 1; exit 3' TERM; `+
			`echo ok > /scratch/f; test -s /etc/podinfo/token || exit 9; `+
			`i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.2 & wait $!; done`, host)
	}
	ctr := v1.Container{
		Name: "app", Image: image, ImagePullPolicy: v1.PullIfNotPresent,
		Command: []string{"sh", "-c", script},
		VolumeMounts: []v1.VolumeMount{
			{Name: "host", MountPath: "/host"}, {Name: "scratch", MountPath: "/scratch"}, {Name: "podinfo", MountPath: "/etc/podinfo"},
		},
	}
	if in.kind != "job" {
		ctr.Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{
			Command: []string{"sh", "-c", "echo prestop >> " + host + ".prestop; sleep 1"},
		}}}
	}
	grace := int64(crashGrace)
	p := &v1.Pod{Spec: v1.PodSpec{
		Containers:                    []v1.Container{ctr},
		TerminationGracePeriodSeconds: &grace,
		Volumes: []v1.Volume{
			{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: h.hostDir}}},
			{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
			{Name: "podinfo", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{{
				DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{
					{Path: "token", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.annotations['crash.nodekit.dev/token']"}},
				}},
			}}}}},
		},
	}}
	if in.kind == "job" {
		p.Spec.RestartPolicy = v1.RestartPolicyNever
	}
	p.APIVersion, p.Kind = "v1", "Pod"
	p.Name = in.name
	p.Annotations = map[string]string{"crash.nodekit.dev/token": in.token}
	return p
}

// add writes a new manifest version for name (an update when it had one).
func (c *crashChurn) add(name, kind string) *crashInst {
	c.next++
	in := &crashInst{name: name, token: fmt.Sprintf("t%d", c.next), kind: kind}
	image := busybox
	switch kind {
	case "job":
		in.exitCode = int32(1 + c.rng.Intn(120))
	case "pull":
		image = c.reg.push(c.t, in.token)
	}
	for _, old := range c.alive() {
		if old.name == name {
			old.removed = true
		}
	}
	c.insts = append(c.insts, in)
	writeManifest(c.t, c.h.manifests, c.manifest(in, image))
	return in
}

func (c *crashChurn) remove(in *crashInst) {
	in.removed = true
	if err := os.Remove(filepath.Join(c.h.manifests, in.name+".yaml")); err != nil {
		c.t.Fatal(err)
	}
}

func (c *crashChurn) alive() []*crashInst {
	var out []*crashInst
	for _, in := range c.insts {
		if !in.removed {
			out = append(out, in)
		}
	}
	return out
}

func (c *crashChurn) hostLines(in *crashInst, what string) int {
	data, err := os.ReadFile(filepath.Join(c.h.hostDir, in.token+"."+what))
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}

// --- the rounds -------------------------------------------------------------------

func (c *crashChurn) run(rounds int) {
	t := c.t
	c.add("steady-a", "app").steady = true
	c.add("steady-b", "app").steady = true
	c.kubelet.start()
	c.connectEmbedded()
	if !c.settle("the first start") {
		t.FailNow()
	}
	start := time.Now()
	for r := 1; r <= rounds; r++ {
		began := time.Now()
		point := c.churnAndKill(r)
		c.kills[point]++
		t.Logf("round %d: killed %s", r, point)
		c.kubelet.start()
		if !c.settle(fmt.Sprintf("round %d (%s)", r, point)) {
			break
		}
		c.survived++
		t.Logf("round %d survived in %s", r, time.Since(began).Round(time.Millisecond))
	}
	perRound := time.Since(start) / time.Duration(max(c.survived, 1))

	// The end: every manifest goes; the agent (still the restarted one)
	// terminates and removes everything.
	for _, in := range c.alive() {
		c.remove(in)
	}
	c.settle("removing every pod")
	mode := "remote"
	if c.embedded {
		mode = "embedded"
	}
	t.Logf("kill points: %v", c.kills)
	summary := fmt.Sprintf("CRASH-SOAK agent mode=%s rounds=%d survived=%d containers_lost=%d exit_codes_lost=%d log_lines_lost=%d terminations_wrong=%d leaks=%d time_per_round=%s",
		mode, rounds, c.survived, c.containersLost, c.exitCodesLost, c.linesLost, c.hookErrs, c.leaks, perRound.Round(100*time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)
}

// churnAndKill changes manifests and kills the agent at a point chosen by the
// round's dice; it returns the point's name.
func (c *crashChurn) churnAndKill(round int) string {
	t := c.t
	var churnable, running []*crashInst
	for _, in := range c.alive() {
		if !in.steady {
			churnable = append(churnable, in)
			if in.kind != "job" {
				running = append(running, in)
			}
		}
	}
	kill := func() {
		if err := c.kubelet.signal(syscall.SIGKILL, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	jitter := func(max time.Duration) { time.Sleep(time.Duration(c.rng.Int63n(int64(max) + 1))) }
	switch point := c.rng.Intn(6); {
	case point == 0 && len(running) > 0:
		// During a grace period: the preStop hook (1 s) has started, or
		// SIGTERM was sent.
		in := running[c.rng.Intn(len(running))]
		c.remove(in)
		waitFor(t, "the preStop hook of "+in.token, time.Minute, func() bool { return c.hostLines(in, "prestop") > 0 })
		jitter(2500 * time.Millisecond)
		kill()
		return "grace"
	case point == 1:
		// Mid image pull.
		gets := c.reg.blobGets.Load()
		in := c.add(fmt.Sprintf("pull-%d", round), "pull")
		waitFor(t, "a blob download for "+in.token, time.Minute, func() bool {
			return c.reg.blobGets.Load() > gets && c.reg.inFlight.Load() > 0
		})
		jitter(1500 * time.Millisecond)
		kill()
		return "pull"
	case point == 2:
		// Volume setup: as soon as the new pod's directory appears.
		before := c.podDirs()
		c.add(fmt.Sprintf("vol-%d", round), "app")
		waitFor(t, "a new pod directory", time.Minute, func() bool {
			return len(c.podDirs()) > len(before)
		})
		kill()
		return "volumes"
	case point == 3:
		// In SyncPod: once the new pod's sandbox exists, before or while
		// its container starts.
		before := len(c.sandboxes())
		kind := "app"
		if c.rng.Intn(3) == 0 {
			kind = "job"
		}
		c.add(fmt.Sprintf("sync-%d", round), kind)
		waitFor(t, "a new sandbox", time.Minute, func() bool { return len(c.sandboxes()) > before })
		jitter(300 * time.Millisecond)
		kill()
		return "syncpod"
	case point == 4:
		// Right after a manifest change.
		c.randomChange(round, churnable)
		jitter(30 * time.Millisecond)
		kill()
		return "after-change"
	default:
		for range 1 + c.rng.Intn(3) {
			c.randomChange(round, churnable)
			churnable = slices.DeleteFunc(churnable, func(in *crashInst) bool { return in.removed })
		}
		jitter(4 * time.Second)
		kill()
		return "random"
	}
}

// randomChange adds, updates or deletes a pod (at most 5 churn pods live).
func (c *crashChurn) randomChange(round int, churnable []*crashInst) {
	op := c.rng.Intn(3)
	if len(churnable) == 0 {
		op = 0
	} else if len(churnable) >= 5 {
		op = 1 + c.rng.Intn(2)
	}
	switch op {
	case 0:
		kinds := []string{"app", "app", "job", "pull"}
		c.add(fmt.Sprintf("churn-%d-%d", round, c.next), kinds[c.rng.Intn(len(kinds))])
	case 1:
		in := churnable[c.rng.Intn(len(churnable))]
		c.add(in.name, in.kind) // a new version: the old pod goes, a new one comes
	default:
		c.remove(churnable[c.rng.Intn(len(churnable))])
	}
}

// --- what the node holds --------------------------------------------------------------

func (c *crashChurn) podDirs() []string {
	entries, _ := os.ReadDir(filepath.Join(c.h.rootDir, "pods"))
	return names(entries)
}

// sandboxes lists the runtime's sandboxes as "<uid> <id> <state>" (nil
// while the runtime does not answer).
func (c *crashChurn) sandboxes() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sbs, err := c.rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range sbs {
		out = append(out, fmt.Sprintf("%s %s %s", s.GetMetadata().GetUid(), s.GetId()[:12], s.GetState()))
	}
	return out
}

// leftovers lists what the node holds of pods other than the live ones
// (uids): sandboxes, containers, pod and log directories, pod cgroups, mounts
// under the pods' directories. ok is false when the runtime did not answer.
func (c *crashChurn) leftovers(uids map[types.UID]bool) (left []string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sbs, err := c.rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, false
	}
	for _, s := range sbs {
		if !uids[types.UID(s.GetMetadata().GetUid())] {
			left = append(left, "sandbox "+s.GetId()[:12]+" of pod "+s.GetMetadata().GetName())
		}
	}
	cs, err := c.rt.ListContainers(ctx, nil)
	if err != nil {
		return nil, false
	}
	for _, ct := range cs {
		if uid := ct.GetLabels()[kubetypes.KubernetesPodUIDLabel]; !uids[types.UID(uid)] {
			left = append(left, "container "+ct.GetId()[:12]+" "+ct.GetState().String()+" of pod "+ct.GetLabels()[kubetypes.KubernetesPodNameLabel])
		}
	}
	for _, d := range c.podDirs() {
		if !uids[types.UID(d)] {
			left = append(left, "pod directory "+d)
		}
	}
	logs, _ := os.ReadDir(c.h.podLogs)
	for _, d := range names(logs) {
		if f := strings.Split(d, "_"); len(f) != 3 || !uids[types.UID(f[2])] {
			left = append(left, "log directory "+d)
		}
	}
	for _, sub := range []string{"cpu", "memory", "pids"} {
		for _, qos := range []string{"", "besteffort", "burstable"} {
			entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", sub, c.h.cgroupRoot, "kubepods", qos))
			for _, e := range entries {
				if uid, found := strings.CutPrefix(e.Name(), "pod"); found && e.IsDir() && !uids[types.UID(uid)] {
					left = append(left, "cgroup "+filepath.Join(sub, "kubepods", qos, e.Name()))
				}
			}
		}
	}
	for _, m := range leakcheck.Mounts(c.t, filepath.Join(c.h.rootDir, "pods")) {
		rel, _ := filepath.Rel(filepath.Join(c.h.rootDir, "pods"), m)
		if !uids[types.UID(strings.Split(rel, "/")[0])] {
			left = append(left, "mount "+m)
		}
	}
	// Every monitor supervises a container the runtime lists.
	if n, want := len(leakcheck.Monitors(c.t, c.h.shimState)), len(cs); n > want {
		left = append(left, fmt.Sprintf("%d container monitors for %d containers", n, want))
	}
	return left, true
}

// settle waits until the agent runs what the manifests say and nothing else
// is left, then checks the invariants. false: it did not settle (reported).
func (c *crashChurn) settle(what string) bool {
	t := c.t
	deadline := time.Now().Add(3 * time.Minute)
	var problems []string
	for {
		problems = problems[:0]
		pods := localPods(c.h.rootDir)
		if pods == nil {
			problems = append(problems, "the agent does not answer")
		}
		uids := map[types.UID]bool{}
		for _, in := range c.alive() {
			p := findToken(pods, in)
			if p == nil {
				problems = append(problems, "no pod for "+in.name+" "+in.token)
				continue
			}
			in.uid = p.UID
			uids[p.UID] = true
			cs := containerStatus(p, "app")
			switch {
			case cs == nil:
				problems = append(problems, in.name+": no container status")
			case in.kind == "job" && cs.State.Terminated == nil:
				problems = append(problems, in.name+": job not finished")
			case in.kind != "job" && (cs.State.Running == nil || !cs.Ready):
				problems = append(problems, in.name+": not running and ready")
			case in.kind != "job" && c.hostLines(in, "start") == 0:
				// Running comes before the shell's first line.
				problems = append(problems, in.name+": its shell has not started yet")
			}
		}
		if pods != nil {
			left, ok := c.leftovers(uids)
			if !ok {
				problems = append(problems, "the runtime does not answer")
			}
			problems = append(problems, left...)
		}
		if len(problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: not settled after 3 minutes:\n  %s", what, strings.Join(problems, "\n  "))
			c.leaks++
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.check(what)
	return true
}

func findToken(pods []v1.Pod, in *crashInst) *v1.Pod {
	for i := range pods {
		if pods[i].Name == in.name+"-"+nodeName && pods[i].Annotations["crash.nodekit.dev/token"] == in.token {
			return &pods[i]
		}
	}
	return nil
}

// check verifies the invariants on a settled node.
func (c *crashChurn) check(what string) {
	t := c.t
	pods := localPods(c.h.rootDir)
	for _, in := range c.insts {
		if in.removed {
			// Gone (settle saw to that); its termination ran once if the
			// container had started.
			starts, hooks, terms := c.hostLines(in, "start"), c.hostLines(in, "prestop"), c.hostLines(in, "term")
			if in.kind == "job" {
				hooks, terms = 0, 0
			}
			wantHooks := min(starts, 1)
			if in.kind == "job" {
				wantHooks = 0
			}
			// A hook is delivered at least once (as Kubernetes documents): a
			// second run only when the agent died while the first ran.
			if (starts > 1 || hooks < wantHooks || hooks > 2*wantHooks || terms != wantHooks) && in.once("termination") {
				t.Errorf("%s: removed pod %s %s (%s): %d starts, %d preStop hooks, %d SIGTERM traps; want at most one start, and per start one SIGTERM and one hook (two if the agent died during it)",
					what, in.name, in.token, in.uid, starts, hooks, terms)
				c.hookErrs++
			}
			continue
		}
		p := findToken(pods, in)
		if p == nil {
			if !in.once("gone") {
				continue
			}
			t.Errorf("%s: pod %s %s is gone", what, in.name, in.token)
			c.containersLost++
			continue
		}
		cs := containerStatus(p, "app")
		if starts := c.hostLines(in, "start"); (starts != 1 || cs.RestartCount != 0) && in.once("restarted") {
			t.Errorf("%s: %s %s: started %d times, restartCount %d; want once", what, in.name, in.token, starts, cs.RestartCount)
			c.containersLost++
		}
		id := criID(cs.ContainerID)
		if in.kind == "job" {
			term := cs.State.Terminated
			if term.ExitCode != in.exitCode && in.once("exit code") {
				t.Errorf("%s: job %s %s exit code %d, want %d", what, in.name, in.token, term.ExitCode, in.exitCode)
				c.exitCodesLost++
			}
			if in.containerID != "" && in.containerID != id && in.once("container "+id) {
				t.Errorf("%s: job %s: container %s became %s", what, in.name, in.containerID, id)
				c.containersLost++
			}
			in.containerID = id
			c.checkLog(what, in, 5)
			continue
		}
		pid := c.pid(id)
		if in.containerID != "" && (in.containerID != id || in.pid != pid) && in.once(fmt.Sprintf("container %s %d", id, pid)) {
			t.Errorf("%s: %s %s: container %s (pid %d) became %s (pid %d)", what, in.name, in.token, in.containerID, in.pid, id, pid)
			c.containersLost++
		}
		in.containerID, in.pid = id, pid
		c.checkLog(what, in, 0)
	}
}

func (c *crashChurn) pid(id string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.rt.ContainerStatus(ctx, id, true)
	if err != nil {
		c.t.Errorf("status of %s: %v", id, err)
		return 0
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		c.t.Errorf("status of %s: info: %v", id, err)
		return 0
	}
	return info.Pid
}

// checkLog reads the container's log (CRI format, numbered lines) and counts
// the lines missing: a gap, or fewer than want (0: any number).
func (c *crashChurn) checkLog(what string, in *crashInst, want int) {
	path := filepath.Join(c.h.podLogs, fmt.Sprintf("default_%s-%s_%s", in.name, nodeName, in.uid), "app", "0.log")
	l, err := numberedlog.Read(path)
	if err != nil {
		if in.once("log") {
			c.t.Errorf("%s: log of %s: %v", what, in.name, err)
			c.linesLost++
		}
		return
	}
	if l.Malformed > 0 && in.once("log malformed") {
		c.t.Errorf("%s: log of %s %s: %d records that do not parse", what, in.name, in.token, l.Malformed)
	}
	for _, g := range l.Gaps {
		if in.once(fmt.Sprintf("log gap %d %d", g.After, g.Got)) {
			c.t.Errorf("%s: log of %s %s: line %d after line %d", what, in.name, in.token, g.Got, g.After)
			if g.Got > g.After {
				c.linesLost += g.Got - g.After - 1
			}
		}
	}
	if want > 0 && l.Last < want && in.once("log end") {
		c.t.Errorf("%s: log of %s %s ends at line %d, want %d", what, in.name, in.token, l.Last, want)
		c.linesLost += want - l.Last
	}
}
