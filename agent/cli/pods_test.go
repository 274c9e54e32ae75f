package cli

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func running(name string, ready bool) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, Ready: ready, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
}

func waiting(name, reason string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason}}}
}

func terminated(name, reason string, code, signal int32) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: reason, ExitCode: code, Signal: signal}}}
}

// restarted sets n restarts, the last one ended ago before now.
func restarted(cs v1.ContainerStatus, n int32, ago time.Duration) v1.ContainerStatus {
	cs.RestartCount = n
	cs.LastTerminationState.Terminated = &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: metav1.NewTime(now.Add(-ago))}
	return cs
}

func started(cs v1.ContainerStatus) v1.ContainerStatus {
	t := true
	cs.Started = &t
	return cs
}

type podSpec struct {
	inits    []string // names; a "+" prefix makes a sidecar (restartPolicy Always)
	apps     []string
	phase    v1.PodPhase
	reason   string
	initSt   []v1.ContainerStatus
	appSt    []v1.ContainerStatus
	conds    map[v1.PodConditionType]bool
	deleting bool
}

func (s podSpec) pod() *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))}}
	always := v1.ContainerRestartPolicyAlways
	for _, n := range s.inits {
		c := v1.Container{Name: strings.TrimPrefix(n, "+")}
		if strings.HasPrefix(n, "+") {
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	for _, n := range s.apps {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: n})
	}
	p.Status = v1.PodStatus{Phase: s.phase, Reason: s.reason, InitContainerStatuses: s.initSt, ContainerStatuses: s.appSt}
	for t, ok := range s.conds {
		st := v1.ConditionFalse
		if ok {
			st = v1.ConditionTrue
		}
		p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{Type: t, Status: st})
	}
	if s.deleting {
		p.DeletionTimestamp = &metav1.Time{Time: now}
	}
	return p
}

func TestPodRow(t *testing.T) {
	initDone := map[v1.PodConditionType]bool{v1.PodInitialized: true}
	for _, tc := range []struct {
		name string
		spec podSpec
		want row
	}{
		{"pending without statuses", podSpec{apps: []string{"a"}, phase: v1.PodPending},
			row{"0/1", "Pending", "0"}},
		{"container creating", podSpec{apps: []string{"a"}, phase: v1.PodPending, appSt: []v1.ContainerStatus{waiting("a", "ContainerCreating")}},
			row{"0/1", "ContainerCreating", "0"}},
		{"running and ready", podSpec{apps: []string{"a", "b"}, phase: v1.PodRunning, appSt: []v1.ContainerStatus{running("a", true), running("b", true)}},
			row{"2/2", "Running", "0"}},
		{"running, one not ready", podSpec{apps: []string{"a", "b"}, phase: v1.PodRunning, appSt: []v1.ContainerStatus{running("a", true), running("b", false)}},
			row{"1/2", "Running", "0"}},
		{"crash loop with restarts", podSpec{apps: []string{"a"}, phase: v1.PodRunning,
			appSt: []v1.ContainerStatus{restarted(waiting("a", "CrashLoopBackOff"), 5, 2*time.Minute)}},
			row{"0/1", "CrashLoopBackOff", "5 (2m ago)"}},
		{"image pull back-off", podSpec{apps: []string{"a"}, phase: v1.PodPending, appSt: []v1.ContainerStatus{waiting("a", "ImagePullBackOff")}},
			row{"0/1", "ImagePullBackOff", "0"}},
		{"completed", podSpec{apps: []string{"a"}, phase: v1.PodSucceeded, appSt: []v1.ContainerStatus{terminated("a", "Completed", 0, 0)}},
			row{"0/1", "Completed", "0"}},
		{"error", podSpec{apps: []string{"a"}, phase: v1.PodFailed, appSt: []v1.ContainerStatus{terminated("a", "Error", 1, 0)}},
			row{"0/1", "Error", "0"}},
		{"exit code without reason", podSpec{apps: []string{"a"}, phase: v1.PodFailed, appSt: []v1.ContainerStatus{terminated("a", "", 3, 0)}},
			row{"0/1", "ExitCode:3", "0"}},
		{"signal without reason", podSpec{apps: []string{"a"}, phase: v1.PodFailed, appSt: []v1.ContainerStatus{terminated("a", "", 137, 9)}},
			row{"0/1", "Signal:9", "0"}},
		{"completed with one still running and ready pod", podSpec{apps: []string{"a", "b"}, phase: v1.PodRunning,
			appSt: []v1.ContainerStatus{running("a", true), terminated("b", "Completed", 0, 0)},
			conds: map[v1.PodConditionType]bool{v1.PodReady: true}},
			row{"1/2", "Running", "0"}},
		{"completed with one still running, pod not ready", podSpec{apps: []string{"a", "b"}, phase: v1.PodRunning,
			appSt: []v1.ContainerStatus{running("a", true), terminated("b", "Completed", 0, 0)}},
			row{"1/2", "NotReady", "0"}},
		{"evicted", podSpec{apps: []string{"a"}, phase: v1.PodFailed, reason: "Evicted"},
			row{"0/1", "Evicted", "0"}},
		{"first init container running", podSpec{inits: []string{"i1", "i2"}, apps: []string{"a"}, phase: v1.PodPending,
			initSt: []v1.ContainerStatus{running("i1", false), waiting("i2", "PodInitializing")},
			appSt:  []v1.ContainerStatus{waiting("a", "PodInitializing")}},
			row{"0/1", "Init:0/2", "0"}},
		{"second init container running", podSpec{inits: []string{"i1", "i2"}, apps: []string{"a"}, phase: v1.PodPending,
			initSt: []v1.ContainerStatus{terminated("i1", "Completed", 0, 0), running("i2", false)},
			appSt:  []v1.ContainerStatus{waiting("a", "PodInitializing")}},
			row{"0/1", "Init:1/2", "0"}},
		{"init container crash loop", podSpec{inits: []string{"i1"}, apps: []string{"a"}, phase: v1.PodPending,
			initSt: []v1.ContainerStatus{restarted(waiting("i1", "CrashLoopBackOff"), 3, 30*time.Second)},
			appSt:  []v1.ContainerStatus{waiting("a", "PodInitializing")}},
			row{"0/1", "Init:CrashLoopBackOff", "3 (30s ago)"}},
		{"init container failed", podSpec{inits: []string{"i1"}, apps: []string{"a"}, phase: v1.PodFailed,
			initSt: []v1.ContainerStatus{terminated("i1", "Error", 1, 0)}},
			row{"0/1", "Init:Error", "0"}},
		{"init container exit code", podSpec{inits: []string{"i1"}, apps: []string{"a"}, phase: v1.PodFailed,
			initSt: []v1.ContainerStatus{terminated("i1", "", 2, 0)}},
			row{"0/1", "Init:ExitCode:2", "0"}},
		{"init container signal", podSpec{inits: []string{"i1"}, apps: []string{"a"}, phase: v1.PodFailed,
			initSt: []v1.ContainerStatus{terminated("i1", "", 143, 15)}},
			row{"0/1", "Init:Signal:15", "0"}},
		{"pod initializing", podSpec{inits: []string{"i1"}, apps: []string{"a"}, phase: v1.PodPending, conds: initDone,
			initSt: []v1.ContainerStatus{terminated("i1", "Completed", 0, 0)},
			appSt:  []v1.ContainerStatus{waiting("a", "PodInitializing")}},
			row{"0/1", "PodInitializing", "0"}},
		{"sidecar started and ready, app running", podSpec{inits: []string{"+side"}, apps: []string{"a"}, phase: v1.PodRunning, conds: initDone,
			initSt: []v1.ContainerStatus{restarted(started(running("side", true)), 2, 10*time.Minute)},
			appSt:  []v1.ContainerStatus{restarted(running("a", true), 1, 3*time.Minute)}},
			row{"2/2", "Running", "3 (3m ago)"}},
		{"sidecar not started yet", podSpec{inits: []string{"+side"}, apps: []string{"a"}, phase: v1.PodPending,
			initSt: []v1.ContainerStatus{running("side", false)},
			appSt:  []v1.ContainerStatus{waiting("a", "PodInitializing")}},
			row{"0/2", "Init:0/1", "0"}},
		{"terminating", podSpec{apps: []string{"a"}, phase: v1.PodRunning, deleting: true, appSt: []v1.ContainerStatus{running("a", true)}},
			row{"1/1", "Terminating", "0"}},
		{"deleted after completion", podSpec{apps: []string{"a"}, phase: v1.PodSucceeded, deleting: true, appSt: []v1.ContainerStatus{terminated("a", "Completed", 0, 0)}},
			row{"0/1", "Completed", "0"}},
		{"node lost", podSpec{apps: []string{"a"}, phase: v1.PodRunning, reason: "NodeLost", deleting: true},
			row{"0/1", "Unknown", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podRow(tc.spec.pod(), now); got != tc.want {
				t.Errorf("podRow = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPrintPodsNamespacesAndAge(t *testing.T) {
	mk := func(ns, name string, age time.Duration) v1.Pod {
		p := podSpec{apps: []string{"a"}, phase: v1.PodRunning, appSt: []v1.ContainerStatus{running("a", true)}}.pod()
		p.Namespace, p.Name = ns, name
		p.CreationTimestamp = metav1.NewTime(now.Add(-age))
		if age == 0 {
			p.CreationTimestamp = metav1.Time{}
		}
		return *p
	}
	var b strings.Builder
	err := PrintPods(&b, []v1.Pod{
		mk("kube-system", "dns", 50*time.Hour),
		mk("default", "web", 90*time.Second),
		mk("default", "api", 0),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE     NAME   READY   STATUS    RESTARTS   AGE
default       api    1/1     Running   0          <unknown>
default       web    1/1     Running   0          90s
kube-system   dns    1/1     Running   0          2d2h
`
	if b.String() != want {
		t.Errorf("PrintPods =\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	if err := PrintPods(&b, nil, now); err != nil || b.String() != "NAME   READY   STATUS   RESTARTS   AGE\n" {
		t.Errorf("PrintPods of no pods = %q, %v", b.String(), err)
	}
}
