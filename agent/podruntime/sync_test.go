package podruntime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"
)

func TestSyncPodFreshPod(t *testing.T) {
	e := newEnv(t)
	pod := newPod("web", "a", "b")
	pod.Labels = map[string]string{"app": "web"}
	pod.Annotations = map[string]string{"kubernetes.io/config.source": "file"}

	res := e.sync(pod)
	if res.Err != nil {
		t.Fatalf("SyncPod: %v", res.Err)
	}
	if got := e.rt.createdList(); !slices.Equal(got, []string{"a#0", "b#0"}) {
		t.Errorf("created %v, want [a#0 b#0]", got)
	}
	calls := strings.Join(e.rt.GetCalls(), ",")
	for _, want := range []string{"RunPodSandbox", "PodSandboxStatus", "CreateContainer", "StartContainer"} {
		if !strings.Contains(calls, want) {
			t.Errorf("calls %s: missing %s", calls, want)
		}
	}
	if !slices.Contains(e.img.Called, "PullImage") {
		t.Errorf("image calls %v: busybox was absent, want a pull", e.img.Called)
	}

	sb := e.rt.sandbox[0]
	if sb.Metadata.Name != "web" || sb.Metadata.Namespace != "default" || sb.Metadata.Uid != "uid-web" || sb.Metadata.Attempt != 0 {
		t.Errorf("sandbox metadata %v", sb.Metadata)
	}
	if sb.Labels["app"] != "web" || sb.Labels[kubetypes.KubernetesPodUIDLabel] != "uid-web" {
		t.Errorf("sandbox labels %v", sb.Labels)
	}
	if sb.Annotations["kubernetes.io/config.source"] != "file" {
		t.Errorf("sandbox annotations %v", sb.Annotations)
	}
	if want := filepath.Join(e.logs, "default_web_uid-web"); sb.LogDirectory != want {
		t.Errorf("log directory %q, want %q", sb.LogDirectory, want)
	}

	id := e.rt.containerIDs("a")[0]
	cfg := e.rt.configs[id]
	if cfg.LogPath != "a/0.log" {
		t.Errorf("log path %q", cfg.LogPath)
	}
	if fi, err := os.Stat(filepath.Join(sb.LogDirectory, "a")); err != nil || !fi.IsDir() {
		t.Errorf("container log directory: %v", err)
	}
	if cfg.Labels[kubetypes.KubernetesContainerNameLabel] != "a" || cfg.Labels[kubetypes.KubernetesPodNameLabel] != "web" {
		t.Errorf("container labels %v", cfg.Labels)
	}
	if cfg.Annotations[AnnotationRestartCount] != "0" || cfg.Annotations[AnnotationHash] == "" ||
		cfg.Annotations[AnnotationTerminationMessagePath] != "/dev/termination-log" {
		t.Errorf("container annotations %v", cfg.Annotations)
	}
	if cfg.Image.Image != "busybox:latest" || cfg.Image.UserSpecifiedImage != "busybox" {
		t.Errorf("image %v", cfg.Image)
	}

	// A second sync with everything running does nothing.
	before := len(e.rt.GetCalls())
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, c := range e.rt.GetCalls()[before:] {
		if c != "ListPodSandbox" && c != "PodSandboxStatus" && c != "ListContainers" {
			t.Errorf("steady state made call %s", c)
		}
	}
}

func TestSyncPodSandboxGoneRecreates(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	// The sandbox dies (e.g. reboot); the container with it.
	e.rt.Lock()
	for _, s := range e.rt.Sandboxes {
		s.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	e.rt.Unlock()
	e.rt.exit(t, e.rt.containerIDs("app")[0], 137, e.clock.Now())

	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	if n := len(e.rt.sandbox); n != 2 || e.rt.sandbox[1].Metadata.Attempt != 1 {
		t.Fatalf("sandboxes created: %d, want a second with attempt 1", n)
	}
	if got := e.rt.createdList(); !slices.Equal(got, []string{"app#0", "app#1"}) {
		t.Errorf("created %v", got)
	}
}

func TestSyncPodInitContainersInOrder(t *testing.T) {
	e := newEnv(t)
	pod := withPolicy(withInits(newPod("p", "app"), initC("i0", false), initC("i1", false)), v1.RestartPolicyOnFailure)

	step := func(want []string) {
		t.Helper()
		if res := e.sync(pod); res.Err != nil {
			t.Fatalf("SyncPod: %v", res.Err)
		}
		if got := e.rt.createdList(); !slices.Equal(got, want) {
			t.Fatalf("created %v, want %v", got, want)
		}
	}
	step([]string{"i0#0"})
	step([]string{"i0#0"}) // still running: nothing new
	e.rt.exit(t, e.rt.containerIDs("i0")[0], 0, e.clock.Now())
	step([]string{"i0#0", "i1#0"})
	e.rt.exit(t, e.rt.containerIDs("i1")[0], 3, e.clock.Now())
	e.clock.Step(time.Minute)
	step([]string{"i0#0", "i1#0", "i1#1"}) // failed: run again (OnFailure), app still waits
	e.rt.exit(t, e.rt.containerIDs("i1")[1], 0, e.clock.Now())
	step([]string{"i0#0", "i1#0", "i1#1", "app#0"})
	// Only the newest instance of an init container is kept.
	if ids := e.rt.containerIDs("i1"); len(ids) != 1 {
		t.Errorf("i1 instances %v, want the newest only", ids)
	}
}

func TestSyncPodInitFailureNeverFailsPod(t *testing.T) {
	e := newEnv(t)
	pod := withPolicy(withInits(newPod("p", "app"), initC("i0", false)), v1.RestartPolicyNever)
	e.sync(pod)
	e.rt.exit(t, e.rt.containerIDs("i0")[0], 1, e.clock.Now())
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := e.rt.createdList(); !slices.Equal(got, []string{"i0#0"}) {
		t.Errorf("created %v: nothing may start after a failed init under Never", got)
	}
	if e.rt.Sandboxes["p_default_uid-p_0"].State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("the failed pod's sandbox was not stopped")
	}
	// And later syncs do not recreate anything.
	e.sync(pod)
	if len(e.rt.sandbox) != 1 {
		t.Errorf("a sandbox was recreated for a failed Never pod")
	}
}

func TestSyncPodSidecarsStartInOrder(t *testing.T) {
	e := newEnv(t)
	pod := withInits(newPod("p", "app"), initC("s0", true), initC("i1", false), initC("s2", true))
	pod.Spec.InitContainers[2].StartupProbe = &v1.Probe{}

	e.sync(pod)
	want := []string{"s0#0"}
	check := func() {
		t.Helper()
		if got := e.rt.createdList(); !slices.Equal(got, want) {
			t.Fatalf("created %v, want %v", got, want)
		}
	}
	check()
	e.sync(pod) // s0 runs (no startup probe): started
	want = append(want, "i1#0")
	check()
	e.rt.exit(t, e.rt.containerIDs("i1")[0], 0, e.clock.Now())
	e.sync(pod)
	want = append(want, "s2#0")
	check()
	e.sync(pod) // s2 has a startup probe that has not succeeded: the app waits
	check()
	e.setProbe(StartupProbe, e.rt.containerIDs("s2")[0], ProbeSuccess)
	e.sync(pod)
	want = append(want, "app#0")
	check()
}

func TestCrashLoopBackOff(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	e.sync(pod)

	crash := func() {
		t.Helper()
		ids := e.rt.containerIDs("app")
		e.rt.exit(t, ids[len(ids)-1], 1, e.clock.Now())
	}
	restarts := func() int { return len(e.rt.containerIDs("app")) - 1 }

	// The first crash restarts at once; then 10 s, 20 s, 40 s ... capped at 300 s.
	crash()
	if res := e.sync(pod); res.Err != nil || restarts() != 1 {
		t.Fatalf("first crash: err %v restarts %d, want an immediate restart", res.Err, restarts())
	}
	for _, delay := range []time.Duration{10, 20, 40, 80, 160, 300, 300} {
		delay *= time.Second
		crash()
		n := restarts()
		res := e.sync(pod)
		if !errors.Is(res.Err, ErrCrashLoopBackOff) || res.Reason != "CrashLoopBackOff" {
			t.Fatalf("sync right after crash: %v, want CrashLoopBackOff", res.Err)
		}
		if res.RetryAfter != delay {
			t.Fatalf("RetryAfter %v, want %v", res.RetryAfter, delay)
		}
		if r, msg := e.m.WaitingReason(pod.UID, "app"); r != "CrashLoopBackOff" || !strings.Contains(msg, "back-off "+delay.String()) {
			t.Fatalf("waiting reason %q %q", r, msg)
		}
		e.clock.Step(delay - time.Second)
		if e.sync(pod); restarts() != n {
			t.Fatalf("restarted %v before the back-off of %v ended", delay-time.Second, delay)
		}
		e.clock.Step(time.Second)
		if res := e.sync(pod); res.Err != nil || restarts() != n+1 {
			t.Fatalf("after %v: err %v restarts %d, want %d", delay, res.Err, restarts(), n+1)
		}
		if r, _ := e.m.WaitingReason(pod.UID, "app"); r != "" {
			t.Fatalf("waiting reason %q after a successful start", r)
		}
	}

	// Ten minutes of running forgive the past: the next crash restarts at once,
	// the one after waits 10 s again.
	e.clock.Step(11 * time.Minute)
	crash()
	n := restarts()
	if res := e.sync(pod); res.Err != nil || restarts() != n+1 {
		t.Fatalf("crash after 11 min of running: err %v, want an immediate restart", res.Err)
	}
	crash()
	if res := e.sync(pod); res.RetryAfter != 10*time.Second {
		t.Fatalf("RetryAfter %v after reset, want 10s", res.RetryAfter)
	}
	// Restart counts follow in the annotations.
	ids := e.rt.containerIDs("app")
	if got := e.rt.configs[ids[len(ids)-1]].Annotations[AnnotationRestartCount]; got != "9" {
		t.Errorf("restartCount annotation %s, want 9", got)
	}
}

func TestLivenessFailureRestarts(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	grace := int64(7)
	pod.Spec.TerminationGracePeriodSeconds = new(int64)
	*pod.Spec.TerminationGracePeriodSeconds = 60
	pod.Spec.Containers[0].LivenessProbe = &v1.Probe{TerminationGracePeriodSeconds: &grace}
	e.sync(pod)
	id := e.rt.containerIDs("app")[0]
	e.setProbe(LivenessProbe, id, ProbeFailure)

	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	stops := e.rt.stopCalls()
	if len(stops) != 1 || stops[0].id != id || stops[0].timeout != grace {
		t.Fatalf("stops %+v, want %s stopped with the probe's grace period %d", stops, id, grace)
	}
	if got := e.rt.createdList(); !slices.Equal(got, []string{"app#0", "app#1"}) {
		t.Errorf("created %v, want a restart", got)
	}
}

func TestImagePullPolicies(t *testing.T) {
	tests := []struct {
		name    string
		image   string
		policy  v1.PullPolicy
		present bool
		pull    bool
		reason  error
	}{
		{"Always pulls a present image", "busybox:1.36", v1.PullAlways, true, true, nil},
		{"IfNotPresent uses a present image", "busybox:1.36", v1.PullIfNotPresent, true, false, nil},
		{"IfNotPresent pulls an absent image", "busybox:1.36", v1.PullIfNotPresent, false, true, nil},
		{"Never uses a present image", "busybox:1.36", v1.PullNever, true, false, nil},
		{"Never fails on an absent image", "busybox:1.36", v1.PullNever, false, false, ErrImageNeverPull},
		{"default policy for :latest is Always", "busybox", "", true, true, nil},
		{"default policy for a tag is IfNotPresent", "busybox:1.36", "", true, false, nil},
		{"invalid image name", "Busy Box", v1.PullAlways, false, false, ErrInvalidImageName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			pod := newPod("p", "app")
			pod.Spec.Containers[0].Image, pod.Spec.Containers[0].ImagePullPolicy = tt.image, tt.policy
			if tt.present {
				img, _ := defaultTag(tt.image)
				e.img.SetFakeImages([]string{img})
			}
			res := e.sync(pod)
			if !errors.Is(res.Err, tt.reason) || (tt.reason == nil) != (res.Err == nil) {
				t.Fatalf("err %v, want %v", res.Err, tt.reason)
			}
			if pulled := slices.Contains(e.img.Called, "PullImage"); pulled != tt.pull {
				t.Errorf("pulled %t, want %t", pulled, tt.pull)
			}
			if tt.reason != nil {
				if r, _ := e.m.WaitingReason(pod.UID, "app"); r != tt.reason.Error() {
					t.Errorf("waiting reason %q, want %q", r, tt.reason)
				}
			}
		})
	}
}

func TestImagePullBackOff(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	pod.Spec.Containers[0].Image = "registry.invalid/app:1"

	e.img.InjectError("PullImage", errors.New("connection refused"))
	res := e.sync(pod)
	if !errors.Is(res.Err, ErrImagePull) || !strings.Contains(res.Message, "connection refused") {
		t.Fatalf("first pull: %v %q, want ErrImagePull with the cause", res.Err, res.Message)
	}
	if res.RetryAfter != 10*time.Second {
		t.Errorf("RetryAfter %v, want 10s", res.RetryAfter)
	}
	pulls := func() int {
		n := 0
		for _, c := range e.img.Called {
			if c == "PullImage" {
				n++
			}
		}
		return n
	}
	res = e.sync(pod)
	if !errors.Is(res.Err, ErrImagePullBackOff) || pulls() != 1 {
		t.Fatalf("second sync: %v (%d pulls), want ImagePullBackOff without pulling", res.Err, pulls())
	}
	if r, _ := e.m.WaitingReason(pod.UID, "app"); r != "ImagePullBackOff" {
		t.Errorf("waiting reason %q", r)
	}
	e.clock.Step(10 * time.Second)
	e.img.InjectError("PullImage", errors.New("connection refused"))
	if res = e.sync(pod); !errors.Is(res.Err, ErrImagePull) || pulls() != 2 {
		t.Fatalf("after 10s: %v (%d pulls), want a second failed pull", res.Err, pulls())
	}
	if res = e.sync(pod); res.RetryAfter != 20*time.Second {
		t.Errorf("back-off after the second failure %v, want 20s", res.RetryAfter)
	}
	e.clock.Step(20 * time.Second)
	if res = e.sync(pod); res.Err != nil {
		t.Fatalf("registry back: %v", res.Err)
	}
	if r, _ := e.m.WaitingReason(pod.UID, "app"); r != "" {
		t.Errorf("waiting reason %q after the container started", r)
	}
}

func TestPostStartFailureKillsContainer(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}}
	e.rt.InjectError("ExecSync", errors.New("command 'false' exited with 1"))

	res := e.sync(pod)
	if !errors.Is(res.Err, ErrPostStartHook) {
		t.Fatalf("err %v, want PostStartHookError", res.Err)
	}
	id := e.rt.containerIDs("app")[0]
	if stops := e.rt.stopCalls(); len(stops) != 1 || stops[0].id != id {
		t.Fatalf("stops %+v, want the container killed", stops)
	}
	if len(e.rt.execs) != 1 || e.rt.execs[0][0] != "false" {
		t.Errorf("execs %v", e.rt.execs)
	}
}

func TestPostStartHTTPHook(t *testing.T) {
	got := make(chan string, 1)
	srv := newHookServer(t, got)
	e := newEnv(t)
	pod := newPod("p", "app")
	host, port := srv.hostPort(t)
	pod.Spec.Containers[0].Ports = []v1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{
		Host: host, Path: "started", Port: intstrFromString("http"),
		HTTPHeaders: []v1.HTTPHeader{{Name: "X-Hook", Value: "yes"}},
	}}}
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	select {
	case r := <-got:
		if r != "/started yes" {
			t.Errorf("hook request %q", r)
		}
	default:
		t.Fatal("the postStart hook made no request")
	}
}

func TestKillPodGracePeriods(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	e.sync(pod)
	rs := inspect(e.rt, pod.UID)

	if err := e.m.KillPod(context.Background(), pod, rs, nil); err != nil {
		t.Fatal(err)
	}
	if s := e.rt.stopCalls(); len(s) != 1 || s[0].timeout != DefaultTerminationGracePeriod {
		t.Errorf("stops %+v, want the default 30 s", s)
	}
	if e.rt.Sandboxes["p_default_uid-p_0"].State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Error("sandbox not stopped")
	}

	// An override below the minimum still leaves 2 s.
	zero := int64(0)
	e.rt.Lock()
	for _, c := range e.rt.Containers {
		c.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	e.rt.Unlock()
	if err := e.m.KillPod(context.Background(), pod, inspect(e.rt, pod.UID), &zero); err != nil {
		t.Fatal(err)
	}
	if s := e.rt.stopCalls(); s[len(s)-1].timeout != MinimumGracePeriod {
		t.Errorf("stop with override 0: timeout %d, want %d", s[len(s)-1].timeout, MinimumGracePeriod)
	}
}

func TestKillPodSidecarsLast(t *testing.T) {
	e := newEnv(t)
	pod := withInits(newPod("p", "a", "b"), initC("s0", true), initC("s1", true))
	// Bring everything up.
	for range 4 {
		e.sync(pod)
	}
	if n := len(e.rt.createdList()); n != 4 {
		t.Fatalf("created %v, want 4 containers", e.rt.createdList())
	}
	if err := e.m.KillPod(context.Background(), pod, inspect(e.rt, pod.UID), nil); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, s := range e.rt.stopCalls() {
		order = append(order, s.name)
	}
	if len(order) != 4 || !slices.Contains(order[:2], "a") || !slices.Contains(order[:2], "b") || order[2] != "s1" || order[3] != "s0" {
		t.Errorf("stop order %v, want a and b, then s1, then s0", order)
	}
}

func TestPreStopRunsBeforeStopWithinGrace(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	g := int64(20)
	pod.Spec.TerminationGracePeriodSeconds = &g
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"drain"}}}}
	e.sync(pod)

	// The hook hangs: the stop must come when the grace period is over, with
	// the minimum left.
	release := make(chan struct{})
	stoppedEarly := make(chan bool, 1)
	e.rt.execHook = func(ctx context.Context, id string, cmd []string) error {
		stoppedEarly <- len(e.rt.stopCalls()) > 0
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- e.m.KillPod(context.Background(), pod, inspect(e.rt, pod.UID), nil) }()
	if <-stoppedEarly {
		t.Fatal("StopContainer was called before the preStop hook ran")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !e.clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("no grace timer armed")
		}
		time.Sleep(time.Millisecond)
	}
	e.clock.Step(20 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(release)
	if s := e.rt.stopCalls(); len(s) != 1 || s[0].timeout != MinimumGracePeriod {
		t.Errorf("stops %+v, want one with the minimum grace after the hook used it all", s)
	}
}

// An agent that died after it marked the preStop hook as begun, and came back
// after the grace period was over: the hook may never have reached the
// container, so it runs again (at least once), with the minimum grace period,
// and the stop gets the minimum after it. (It was skipped: 0 hooks in the
// agent's crash rounds.)
func TestPreStopRerunAfterTheGracePeriod(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	g := int64(4)
	pod.Spec.TerminationGracePeriodSeconds = &g
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"drain"}}}}
	e.sync(pod)
	id := e.rt.containerIDs("app")[0]
	e.m.markPreStop(pod, "app", id)
	if _, ok := e.m.preStopBegan(pod, "app", id); !ok {
		t.Fatal("the preStop marker was not written")
	}
	e.clock.Step(10 * time.Second) // the restart took longer than the grace period
	if err := e.m.KillPod(context.Background(), pod, inspect(e.rt, pod.UID), nil); err != nil {
		t.Fatal(err)
	}
	if len(e.rt.execs) != 1 || e.rt.execs[0][0] != "drain" {
		t.Errorf("execs %v: the preStop hook begun before the restart did not run again", e.rt.execs)
	}
	if s := e.rt.stopCalls(); len(s) != 1 || s[0].timeout != MinimumGracePeriod {
		t.Errorf("stops %+v, want one with the minimum grace period", s)
	}
	if !e.m.preStopDone(pod, "app", id) {
		t.Error("the hook's end was not recorded")
	}
}

func TestKillPodWithoutSpec(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	g := int64(12)
	pod.Spec.TerminationGracePeriodSeconds = &g
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"bye"}}}}
	e.sync(pod)
	// The agent restarted and the manifest is gone: only the CRI status is left.
	if err := e.m.KillPod(context.Background(), nil, inspect(e.rt, pod.UID), nil); err != nil {
		t.Fatal(err)
	}
	if len(e.rt.execs) != 1 || e.rt.execs[0][0] != "bye" {
		t.Errorf("execs %v: the preStop hook was not restored from the annotations", e.rt.execs)
	}
	if s := e.rt.stopCalls(); len(s) != 1 || s[0].timeout != 12 {
		t.Errorf("stops %+v, want the grace period restored from the annotations", s)
	}
}

func TestKillContainer(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	e.sync(pod)
	id := e.rt.containerIDs("app")[0]
	if err := e.m.KillContainer(context.Background(), pod, "fake://"+id, "app", ReasonStopping, nil); err != nil {
		t.Fatal(err)
	}
	if s := e.rt.stopCalls(); len(s) != 1 || s[0].id != id {
		t.Errorf("stops %+v", s)
	}
}

// A container an earlier agent created but did not start (it died between
// CreateContainer and StartContainer) is started, not replaced: it runs once and
// no restart is counted.
func TestSyncPodStartsACreatedContainer(t *testing.T) {
	e := newEnv(t)
	pod := newPod("web", "a")
	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	id := e.rt.containerIDs("a")[0]
	e.rt.Lock()
	e.rt.Containers[id].State = runtimeapi.ContainerState_CONTAINER_CREATED
	e.rt.Unlock()

	if res := e.sync(pod); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := e.rt.createdList(); !slices.Equal(got, []string{"a#0"}) {
		t.Errorf("created %v, want only a#0 (the created instance started)", got)
	}
	e.rt.Lock()
	st := e.rt.Containers[id].State
	e.rt.Unlock()
	if st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container %s is %v, want RUNNING", id, st)
	}
}
