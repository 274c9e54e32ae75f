package status

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/pleg"
)

func mt(sec int) metav1.Time { return metav1.NewTime(time.Unix(0, at(sec))) }

func TestContainerStatuses(t *testing.T) {
	const CREATED, UNKNOWN = runtimeapi.ContainerState_CONTAINER_CREATED, runtimeapi.ContainerState_CONTAINER_UNKNOWN
	never := withRestart(v1.RestartPolicyNever)
	runningOld := v1.ContainerStatus{Name: "a", Image: "img/a", ContainerID: "fake://a1", RestartCount: 2,
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: mt(1)}}}

	tests := []struct {
		name    string
		pod     *v1.Pod
		runtime []*runtimeapi.ContainerStatus
		old     []v1.ContainerStatus
		waiting map[string]string
		want    v1.ContainerStatus // compared on Name, State, LastTerminationState, RestartCount, Image, ImageID, ContainerID
	}{
		{
			name: "not created yet",
			pod:  testPod(withContainers("a")),
			want: v1.ContainerStatus{Name: "a", Image: "img/a", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: ReasonContainerCreating}}},
		},
		{
			name: "not created yet, pod has init containers",
			pod:  testPod(withInit("i"), withContainers("a")),
			want: v1.ContainerStatus{Name: "a", Image: "img/a", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: ReasonPodInitializing}}},
		},
		{
			name:    "image pull failing",
			pod:     testPod(withContainers("a")),
			waiting: map[string]string{"a": "ErrImagePull"},
			want:    v1.ContainerStatus{Name: "a", Image: "img/a", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "msg for a"}}},
		},
		{
			name:    "config error",
			pod:     testPod(withContainers("a")),
			waiting: map[string]string{"a": "CreateContainerConfigError"},
			want:    v1.ContainerStatus{Name: "a", Image: "img/a", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: "msg for a"}}},
		},
		{
			name:    "created, not started",
			pod:     testPod(withContainers("a")),
			runtime: rs(ctr("a", "a1", 1, CREATED)),
			want:    v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a1", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{}}},
		},
		{
			name:    "running",
			pod:     testPod(withContainers("a")),
			runtime: rs(running("a", "a1", 1)),
			waiting: map[string]string{"a": "CrashLoopBackOff"}, // ignored: running containers are not restarted
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a1",
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: mt(2)}}},
		},
		{
			name:    "exited",
			pod:     testPod(never, withContainers("a")),
			runtime: rs(exited("a", "a1", 1, 3, func(c *runtimeapi.ContainerStatus) { c.Message = "boom" })),
			waiting: map[string]string{"a": "CrashLoopBackOff"}, // ignored: restartPolicy Never
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a1",
				State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 3, Reason: "Error", Message: "boom", StartedAt: mt(2), FinishedAt: mt(6), ContainerID: "fake://a1"}}},
		},
		{
			name:    "restarted: the previous instance is the last state",
			pod:     testPod(withContainers("a")),
			runtime: rs(running("a", "a2", 20, restarts(1)), exited("a", "a1", 1, 1, restarts(0))),
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a2", RestartCount: 1,
				State:                v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: mt(21)}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: mt(2), FinishedAt: mt(6), ContainerID: "fake://a1"}}},
		},
		{
			name:    "crash loop back-off",
			pod:     testPod(withContainers("a")),
			runtime: rs(exited("a", "a3", 40, 2, restarts(2)), exited("a", "a2", 20, 1, restarts(1)), exited("a", "a1", 1, 1)),
			waiting: map[string]string{"a": "CrashLoopBackOff"},
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a3", RestartCount: 2,
				State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "msg for a"}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", StartedAt: mt(41), FinishedAt: mt(45), ContainerID: "fake://a3"}}},
		},
		{
			name:    "exited, about to restart (no reason known)",
			pod:     testPod(withContainers("a")),
			runtime: rs(exited("a", "a1", 1, 0, restarts(0))),
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a1",
				State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: mt(2), FinishedAt: mt(6), ContainerID: "fake://a1"}}},
		},
		{
			name:    "restart count without annotation: older instances",
			pod:     testPod(withContainers("a")),
			runtime: rs(running("a", "a3", 40), exited("a", "a2", 20, 1), exited("a", "a1", 1, 1)),
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a3", RestartCount: 2,
				State:                v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: mt(41)}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: mt(21), FinishedAt: mt(25), ContainerID: "fake://a2"}}},
		},
		{
			name:    "restart count without annotation: CRI attempt",
			pod:     testPod(withContainers("a")),
			runtime: rs(running("a", "a7", 40, func(c *runtimeapi.ContainerStatus) { c.Metadata.Attempt = 7 })),
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a7", RestartCount: 7,
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: mt(41)}}},
		},
		{
			name:    "unknown state after running",
			pod:     testPod(withContainers("a")),
			runtime: rs(ctr("a", "a1", 1, UNKNOWN, restarts(2))),
			old:     []v1.ContainerStatus{runningOld},
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a1", RestartCount: 3,
				State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 137, Reason: ReasonContainerStatusUnknown, Message: "The container could not be located when the pod was terminated"}}},
		},
		{
			name:    "unknown state, never ran",
			pod:     testPod(withContainers("a")),
			runtime: rs(ctr("a", "a1", 1, UNKNOWN)),
			want:    v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a1", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{}}},
		},
		{
			name: "vanished from the runtime after running",
			pod:  testPod(withContainers("a")),
			old:  []v1.ContainerStatus{runningOld},
			want: v1.ContainerStatus{Name: "a", Image: "img/a", RestartCount: 3,
				State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: ReasonContainerCreating}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 137, Reason: ReasonContainerStatusUnknown, Message: "The container could not be located when the pod was deleted.  The container used to be Running"}}},
		},
		{
			name: "terminated and removed from the runtime: old status kept",
			pod:  testPod(never, withContainers("a")),
			old: []v1.ContainerStatus{{Name: "a", Image: "img/a", ContainerID: "fake://a1",
				State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", ContainerID: "fake://a1"}}}},
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ContainerID: "fake://a1",
				State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", ContainerID: "fake://a1"}}},
		},
		{
			name: "restart count and last state come from old while waiting",
			pod:  testPod(withContainers("a")),
			old: []v1.ContainerStatus{{Name: "a", RestartCount: 4, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}}}},
			waiting: map[string]string{"a": "CrashLoopBackOff"},
			want: v1.ContainerStatus{Name: "a", Image: "img/a", RestartCount: 4,
				State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "msg for a"}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}}},
		},
		{
			name:    "user specified image is the spec's",
			pod:     testPod(withContainers("a")),
			runtime: rs(running("a", "a1", 1, func(c *runtimeapi.ContainerStatus) { c.Image.Image = "sha256:deadbeef" })),
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a1",
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: mt(2)}}},
		},
		{
			name:    "name from the label when metadata is missing",
			pod:     testPod(withContainers("a")),
			runtime: rs(running("a", "a1", 1, func(c *runtimeapi.ContainerStatus) { c.Metadata = nil })),
			want: v1.ContainerStatus{Name: "a", Image: "img/a", ImageID: "sha256:a", ContainerID: "fake://a1",
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: mt(2)}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			o.WaitingReason = reasons(tc.waiting)
			s := Generate(tc.pod, rstatus(tc.runtime...), v1.PodStatus{ContainerStatuses: tc.old}, o)
			got, ok := findStatus(s.ContainerStatuses, tc.want.Name)
			if !ok {
				t.Fatalf("no status for %q in %+v", tc.want.Name, s.ContainerStatuses)
			}
			got.Ready, got.Started, got.User = false, nil, nil
			if !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("status:\n got  %+v\n want %+v", got, tc.want)
			}
		})
	}
}

func TestInitContainerStatuses(t *testing.T) {
	pod := testPod(withInit("i1", "i2"), withSidecars("s"), withContainers("b", "a"),
		func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		})
	t.Run("order and waiting reasons", func(t *testing.T) {
		o := opts()
		o.WaitingReason = reasons(map[string]string{"i1": "CrashLoopBackOff", "i2": "ErrImagePull", "s": "ImagePullBackOff"})
		r := rstatus(exited("i1", "i1a", 1, 1), running("debug", "d1", 2))
		s := Generate(pod, r, v1.PodStatus{}, o)
		var names []string
		for _, c := range s.InitContainerStatuses {
			names = append(names, c.Name)
		}
		if strings.Join(names, ",") != "i1,i2,s" {
			t.Errorf("init container statuses in order %v, want spec order i1,i2,s", names)
		}
		names = nil
		for _, c := range s.ContainerStatuses {
			names = append(names, c.Name)
		}
		if strings.Join(names, ",") != "a,b" {
			t.Errorf("container statuses in order %v, want by name a,b", names)
		}
		if len(s.EphemeralContainerStatuses) != 0 {
			t.Errorf("ephemeral container statuses = %+v, want none", s.EphemeralContainerStatuses)
		}
		i1 := s.InitContainerStatuses[0]
		if i1.State.Waiting == nil || i1.State.Waiting.Reason != "CrashLoopBackOff" || i1.LastTerminationState.Terminated == nil || i1.LastTerminationState.Terminated.ExitCode != 1 {
			t.Errorf("failed init container = %+v, want waiting CrashLoopBackOff after exit 1", i1)
		}
		if w := s.InitContainerStatuses[1].State.Waiting; w == nil || w.Reason != "ErrImagePull" {
			t.Errorf("i2 state = %+v, want waiting ErrImagePull", s.InitContainerStatuses[1].State)
		}
		for _, c := range s.ContainerStatuses {
			if w := c.State.Waiting; w == nil || w.Reason != ReasonPodInitializing {
				t.Errorf("%s state = %+v, want waiting PodInitializing", c.Name, c.State)
			}
		}
		if s.Phase != v1.PodPending {
			t.Errorf("phase = %s, want Pending", s.Phase)
		}
	})
	t.Run("restartPolicy Never: sidecars restart, init containers do not", func(t *testing.T) {
		p := testPod(withRestart(v1.RestartPolicyNever), withSidecars("s"), withInit("i"), withContainers("a"))
		o := opts()
		o.WaitingReason = reasons(map[string]string{"s": "CrashLoopBackOff", "i": "CrashLoopBackOff"})
		s := Generate(p, rstatus(exited("s", "s1", 1, 1), exited("i", "i1", 2, 1)), v1.PodStatus{}, o)
		if w := s.InitContainerStatuses[0].State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" {
			t.Errorf("sidecar state = %+v, want waiting CrashLoopBackOff", s.InitContainerStatuses[0].State)
		}
		if term := s.InitContainerStatuses[1].State.Terminated; term == nil || term.ExitCode != 1 {
			t.Errorf("init container state = %+v, want terminated 1", s.InitContainerStatuses[1].State)
		}
		if s.Phase != v1.PodFailed {
			t.Errorf("phase = %s, want Failed", s.Phase)
		}
	})
	t.Run("succeeded init containers are not restarted", func(t *testing.T) {
		o := opts()
		o.WaitingReason = reasons(map[string]string{"i1": "CrashLoopBackOff"})
		s := Generate(pod, rstatus(exited("i1", "i1a", 1, 0)), v1.PodStatus{}, o)
		i1 := s.InitContainerStatuses[0]
		if i1.State.Terminated == nil || i1.State.Terminated.ExitCode != 0 || !i1.Ready {
			t.Errorf("i1 = %+v, want terminated 0 and ready", i1)
		}
	})
	t.Run("removed init containers after app containers started count as completed", func(t *testing.T) {
		r := rstatus(running("s", "s1", 5), running("a", "a1", 10), running("b", "b1", 10))
		s := Generate(pod, r, v1.PodStatus{}, opts())
		for _, c := range s.InitContainerStatuses[:2] {
			if c.State.Terminated == nil || c.State.Terminated.Reason != ReasonCompleted {
				t.Errorf("%s = %+v, want terminated Completed", c.Name, c.State)
			}
		}
		if sc := s.InitContainerStatuses[2]; sc.State.Running == nil || sc.Started == nil || !*sc.Started || !sc.Ready {
			t.Errorf("sidecar = %+v, want running, started and ready (no probes)", sc)
		}
		if s.Phase != v1.PodRunning || condition(s, v1.PodInitialized).Status != v1.ConditionTrue {
			t.Errorf("phase %s, Initialized %s; want Running and True", s.Phase, condition(s, v1.PodInitialized).Status)
		}
	})
}

func TestProbeDefaults(t *testing.T) {
	probe := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
	pod := testPod(withContainers("plain", "probed", "slow"), func(p *v1.Pod) {
		p.Spec.Containers[1].ReadinessProbe = probe
		p.Spec.Containers[2].StartupProbe = probe
	})
	r := rstatus(running("plain", "p1", 1), running("probed", "r1", 1), running("slow", "s1", 1))
	s := Generate(pod, r, v1.PodStatus{}, opts())
	want := map[string][2]bool{"plain": {true, true}, "probed": {true, false}, "slow": {false, false}}
	for _, c := range s.ContainerStatuses {
		if c.Started == nil || *c.Started != want[c.Name][0] || c.Ready != want[c.Name][1] {
			t.Errorf("%s: started=%v ready=%v, want %v", c.Name, c.Started, c.Ready, want[c.Name])
		}
	}

	// Probe results written into the old status (by the status manager) stay
	// for the same container, not for its replacement.
	for i := range s.ContainerStatuses {
		s.ContainerStatuses[i].Started, s.ContainerStatuses[i].Ready = boolp(true), true
	}
	s2 := Generate(pod, r, s, opts())
	for _, c := range s2.ContainerStatuses {
		if !c.Ready || c.Started == nil || !*c.Started {
			t.Errorf("%s: ready/started not kept: %+v", c.Name, c)
		}
	}
	r3 := rstatus(running("plain", "p1", 1), running("probed", "r2", 30, restarts(1)), exited("probed", "r1", 1, 1), running("slow", "s1", 1))
	s3 := Generate(pod, r3, s2, opts())
	probed, _ := findStatus(s3.ContainerStatuses, "probed")
	if probed.Ready {
		t.Errorf("replaced container kept readiness of the old one: %+v", probed)
	}

	// A wired probe manager decides instead.
	o := opts()
	called := false
	o.ProbeStatus = func(p *v1.Pod, st *v1.PodStatus) {
		called = p == pod && len(st.ContainerStatuses) == 3
	}
	s4 := Generate(pod, r, v1.PodStatus{}, o)
	if !called {
		t.Fatal("ProbeStatus not called with the pod and its statuses")
	}
	for _, c := range s4.ContainerStatuses {
		if c.Ready || c.Started != nil {
			t.Errorf("%s: defaults applied although ProbeStatus is set: %+v", c.Name, c)
		}
	}
}

func TestTerminationMessage(t *testing.T) {
	dir := t.TempDir()
	msgFile := filepath.Join(dir, "termination-log")
	logFile := filepath.Join(dir, "0.log")
	if err := os.WriteFile(logFile, []byte(
		"2025-03-01T12:00:00.000000000Z stdout F first line\n"+
			"2025-03-01T12:00:01.000000000Z stderr P partial \n"+
			"2025-03-01T12:00:01.100000000Z stderr F end\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withMsg := func(policy v1.TerminationMessagePolicy) ctrOpt {
		return func(c *runtimeapi.ContainerStatus) {
			c.Annotations[TerminationMessagePathAnnotation] = "/dev/termination-log"
			c.Annotations[TerminationMessagePolicyAnnotation] = string(policy)
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: msgFile}}
			c.LogPath = logFile
		}
	}
	tests := []struct {
		name    string
		content *string // nil: no message file
		policy  v1.TerminationMessagePolicy
		code    int32
		want    string
	}{
		{name: "file", content: ptr("disk full"), policy: v1.TerminationMessageReadFile, code: 1, want: "disk full"},
		{name: "file wins over logs", content: ptr("disk full"), policy: v1.TerminationMessageFallbackToLogsOnError, code: 1, want: "disk full"},
		{name: "empty file, fallback to logs", content: ptr(""), policy: v1.TerminationMessageFallbackToLogsOnError, code: 1, want: "first line\npartial end\n"},
		{name: "no file, fallback to logs", policy: v1.TerminationMessageFallbackToLogsOnError, code: 2, want: "first line\npartial end\n"},
		{name: "no fallback on success", content: ptr(""), policy: v1.TerminationMessageFallbackToLogsOnError, code: 0, want: ""},
		{name: "no fallback under File policy", policy: v1.TerminationMessageReadFile, code: 1, want: ""},
		{name: "tail of a long message", content: ptr(strings.Repeat("x", 5000) + "END"), policy: v1.TerminationMessageReadFile, code: 1, want: strings.Repeat("x", 4093) + "END"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(msgFile)
			if tc.content != nil {
				if err := os.WriteFile(msgFile, []byte(*tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c := exited("a", "a1", 1, tc.code, withMsg(tc.policy))
			if got := ReadTerminationMessage(c); got != tc.want {
				t.Errorf("message = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("joined with the runtime's message in the status", func(t *testing.T) {
		if err := os.WriteFile(msgFile, []byte("bye"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := exited("a", "a1", 1, 137, withMsg(v1.TerminationMessageReadFile), func(c *runtimeapi.ContainerStatus) {
			c.Reason, c.Message = "OOMKilled", "out of memory"
		})
		s := Generate(testPod(withRestart(v1.RestartPolicyNever), withContainers("a")), rstatus(c), v1.PodStatus{}, opts())
		if got := s.ContainerStatuses[0].State.Terminated; got == nil || got.Message != "out of memory: bye" || got.Reason != "OOMKilled" {
			t.Errorf("terminated = %+v, want OOMKilled with message %q", got, "out of memory: bye")
		}
	})
	t.Run("hook", func(t *testing.T) {
		o := opts()
		o.TerminationMessage = func(c *runtimeapi.ContainerStatus) string { return "from hook " + c.GetId() }
		s := Generate(testPod(withRestart(v1.RestartPolicyNever), withContainers("a")), rstatus(exited("a", "a1", 1, 1)), v1.PodStatus{}, o)
		if got := s.ContainerStatuses[0].State.Terminated.Message; got != "from hook a1" {
			t.Errorf("message = %q", got)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestIPs(t *testing.T) {
	hostNet := func(p *v1.Pod) { p.Spec.HostNetwork = true }
	tests := []struct {
		name      string
		pod       *v1.Pod
		ips       []string
		hostIPs   []string
		wantPod   []string
		wantHosts []string
	}{
		{name: "single", pod: testPod(withContainers("a")), ips: []string{"10.0.0.5"}, wantPod: []string{"10.0.0.5"}},
		{name: "dual stack, IPv4 node", pod: testPod(withContainers("a")), ips: []string{"fd00::5", "10.0.0.5", "10.0.0.6"}, hostIPs: []string{"192.168.1.2"},
			wantPod: []string{"10.0.0.5", "fd00::5"}, wantHosts: []string{"192.168.1.2"}},
		{name: "dual stack, IPv6 node", pod: testPod(withContainers("a")), ips: []string{"10.0.0.5", "fd00::5"}, hostIPs: []string{"2001:db8::2", "192.168.1.2"},
			wantPod: []string{"fd00::5", "10.0.0.5"}, wantHosts: []string{"2001:db8::2", "192.168.1.2"}},
		{name: "garbage skipped", pod: testPod(withContainers("a")), ips: []string{"nope", "10.0.0.5"}, wantPod: []string{"10.0.0.5"}},
		{name: "host network", pod: testPod(withContainers("a"), hostNet), hostIPs: []string{"192.168.1.2", "2001:db8::2"},
			wantPod: []string{"192.168.1.2", "2001:db8::2"}, wantHosts: []string{"192.168.1.2", "2001:db8::2"}},
		{name: "no IPs", pod: testPod(withContainers("a"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			o.HostIPs = tc.hostIPs
			s := Generate(tc.pod, &pleg.PodStatus{IPs: tc.ips}, v1.PodStatus{}, o)
			var pod, hosts []string
			for _, ip := range s.PodIPs {
				pod = append(pod, ip.IP)
			}
			for _, ip := range s.HostIPs {
				hosts = append(hosts, ip.IP)
			}
			if strings.Join(pod, ",") != strings.Join(tc.wantPod, ",") || strings.Join(hosts, ",") != strings.Join(tc.wantHosts, ",") {
				t.Fatalf("podIPs %v hostIPs %v, want %v %v", pod, hosts, tc.wantPod, tc.wantHosts)
			}
			if first := ""; len(tc.wantPod) > 0 && s.PodIP != tc.wantPod[0] || len(tc.wantPod) == 0 && s.PodIP != first {
				t.Errorf("podIP = %q", s.PodIP)
			}
			if len(tc.wantHosts) > 0 && s.HostIP != tc.wantHosts[0] {
				t.Errorf("hostIP = %q", s.HostIP)
			}
		})
	}
}

func TestQOS(t *testing.T) {
	res := func(req, lim string) v1.ResourceRequirements {
		r := v1.ResourceRequirements{}
		parse := func(s string) v1.ResourceList {
			if s == "" {
				return nil
			}
			l := v1.ResourceList{}
			for _, kv := range strings.Split(s, ",") {
				k, v, _ := strings.Cut(kv, "=")
				l[v1.ResourceName(k)] = resource.MustParse(v)
			}
			return l
		}
		r.Requests, r.Limits = parse(req), parse(lim)
		return r
	}
	pod := func(rs ...v1.ResourceRequirements) *v1.Pod {
		p := testPod()
		for i, r := range rs {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: string(rune('a' + i)), Resources: r})
		}
		return p
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		want v1.PodQOSClass
	}{
		{name: "nothing", pod: pod(res("", "")), want: v1.PodQOSBestEffort},
		{name: "only other resources", pod: pod(res("ephemeral-storage=1Gi", "")), want: v1.PodQOSBestEffort},
		{name: "zero requests", pod: pod(res("cpu=0", "")), want: v1.PodQOSBestEffort},
		{name: "requests equal limits", pod: pod(res("cpu=1,memory=1Gi", "cpu=1,memory=1Gi")), want: v1.PodQOSGuaranteed},
		{name: "limits only", pod: pod(res("", "cpu=1,memory=1Gi")), want: v1.PodQOSBurstable},
		{name: "requests below limits", pod: pod(res("cpu=500m,memory=1Gi", "cpu=1,memory=1Gi")), want: v1.PodQOSBurstable},
		{name: "cpu only", pod: pod(res("cpu=1", "cpu=1")), want: v1.PodQOSBurstable},
		{name: "one guaranteed one best effort", pod: pod(res("cpu=1,memory=1Gi", "cpu=1,memory=1Gi"), res("", "")), want: v1.PodQOSBurstable},
		{name: "two guaranteed", pod: pod(res("cpu=1,memory=1Gi", "cpu=1,memory=1Gi"), res("cpu=2,memory=2Gi", "cpu=2,memory=2Gi")), want: v1.PodQOSGuaranteed},
		{name: "init container counts", pod: func() *v1.Pod {
			p := pod(res("cpu=1,memory=1Gi", "cpu=1,memory=1Gi"))
			p.Spec.InitContainers = []v1.Container{{Name: "i", Resources: res("cpu=1", "")}}
			return p
		}(), want: v1.PodQOSBurstable},
		{name: "pod-level resources decide", pod: func() *v1.Pod {
			p := pod(res("", ""))
			r := res("cpu=1,memory=1Gi", "cpu=1,memory=1Gi")
			p.Spec.Resources = &r
			return p
		}(), want: v1.PodQOSGuaranteed},
		{name: "status wins", pod: func() *v1.Pod { p := pod(res("", "")); p.Status.QOSClass = v1.PodQOSBurstable; return p }(), want: v1.PodQOSBurstable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Generate(tc.pod, nil, v1.PodStatus{}, opts()).QOSClass; got != tc.want {
				t.Errorf("qos = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestStartTime(t *testing.T) {
	pod := testPod(withContainers("a"))
	o := opts()
	s := Generate(pod, nil, v1.PodStatus{}, o)
	if s.StartTime == nil || !s.StartTime.Time.Equal(o.Now) {
		t.Fatalf("start time = %v, want %v", s.StartTime, o.Now)
	}
	o.Now = o.Now.Add(time.Minute)
	if s2 := Generate(pod, nil, s, o); !s2.StartTime.Time.Equal(s.StartTime.Time) {
		t.Errorf("start time moved to %v", s2.StartTime)
	}
	pod.Status.StartTime = ptr(metav1.NewTime(t0))
	if s3 := Generate(pod, nil, v1.PodStatus{}, o); !s3.StartTime.Time.Equal(t0) {
		t.Errorf("start time = %v, want the API pod's %v", s3.StartTime, t0)
	}
}

func TestGenerateDoesNotModifyInputs(t *testing.T) {
	pod := testPod(withContainers("b", "a"))
	r := rstatus(exited("a", "a1", 1, 1), running("a", "a2", 10), running("b", "b1", 5))
	before := r.ContainerStatuses[0].GetId()
	podCopy := pod.DeepCopy()
	Generate(pod, r, v1.PodStatus{}, opts())
	if r.ContainerStatuses[0].GetId() != before {
		t.Error("runtime status slice reordered")
	}
	if !equality.Semantic.DeepEqual(pod, podCopy) {
		t.Error("pod modified")
	}
}
