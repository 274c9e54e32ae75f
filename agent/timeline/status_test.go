package timeline

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestStatusChanged(t *testing.T) {
	running := v1.ContainerState{Running: &v1.ContainerStateRunning{}}
	waiting := func(reason, msg string) v1.ContainerState {
		return v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason, Message: msg}}
	}
	exited := func(code int32, reason string) v1.ContainerState {
		return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: "bye"}}
	}
	cond := func(typ v1.PodConditionType, s v1.ConditionStatus, reason string) v1.PodCondition {
		return v1.PodCondition{Type: typ, Status: s, Reason: reason}
	}
	cs := func(name, id string, st v1.ContainerState, ready bool, restarts int32) v1.ContainerStatus {
		return v1.ContainerStatus{Name: name, ContainerID: id, State: st, Ready: ready, RestartCount: restarts}
	}
	tests := []struct {
		name     string
		old, cur v1.PodStatus
		want     []string // container|what|reason|message
	}{
		{
			name: "first status: the phase only",
			cur: v1.PodStatus{Phase: v1.PodPending, Conditions: []v1.PodCondition{cond(v1.PodReady, v1.ConditionFalse, "ContainersNotReady")},
				ContainerStatuses: []v1.ContainerStatus{cs("app", "", waiting("ContainerCreating", ""), false, 0)}},
			want: []string{"|phase Pending||"},
		},
		{
			name: "started and ready",
			old: v1.PodStatus{Phase: v1.PodPending, Conditions: []v1.PodCondition{cond(v1.PodReady, v1.ConditionFalse, "ContainersNotReady")},
				ContainerStatuses: []v1.ContainerStatus{cs("app", "", waiting("ContainerCreating", ""), false, 0)}},
			cur: v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{cond(v1.PodReady, v1.ConditionTrue, "")},
				ContainerStatuses: []v1.ContainerStatus{cs("app", "fake://1", running, true, 0)}},
			want: []string{
				"|phase Pending -> Running||",
				"|condition Ready False -> True||",
				"app|state Waiting (ContainerCreating) -> Running||",
				"app|ready false -> true||",
			},
		},
		{
			name: "crash into back-off",
			old:  v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{cs("app", "fake://1", exited(1, "Error"), false, 0)}},
			cur:  v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{cs("app", "fake://1", waiting("CrashLoopBackOff", "back-off 10s"), false, 1)}},
			want: []string{"app|state Terminated (Error) -> Waiting (CrashLoopBackOff)|CrashLoopBackOff|back-off 10s; restart count 1"},
		},
		{
			name: "exit",
			old:  v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{cs("app", "fake://1", running, true, 0)}},
			cur:  v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{cs("app", "fake://1", exited(137, "Error"), false, 0)}},
			want: []string{"app|state Running -> Terminated (Error)|Error|exit code 137; bye", "app|ready true -> false||"},
		},
		{
			name: "replaced between two statuses",
			old:  v1.PodStatus{Phase: v1.PodRunning, InitContainerStatuses: []v1.ContainerStatus{cs("proxy", "fake://1", running, true, 0)}},
			cur:  v1.PodStatus{Phase: v1.PodRunning, InitContainerStatuses: []v1.ContainerStatus{cs("proxy", "fake://2", running, true, 1)}},
			want: []string{"proxy|state Running -> Running||restart count 1"},
		},
		{
			name: "evicted",
			old:  v1.PodStatus{Phase: v1.PodRunning},
			cur:  v1.PodStatus{Phase: v1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."},
			want: []string{"|phase Running -> Failed|Evicted|The node was low on resource: memory."},
		},
		{
			name: "nothing the timeline shows",
			old:  v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.0.0.1"},
			cur:  v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.0.0.2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTest(Options{})
			p := pod("default", "web", "u1")
			r.Add(p)
			r.StatusChanged(p, &tt.old, &tt.cur)
			var got []string
			for _, e := range get(t, r, "u1").Entries {
				if e.Kind != Status {
					t.Errorf("kind %s", e.Kind)
				}
				got = append(got, e.Container+"|"+e.What+"|"+e.Reason+"|"+e.Message)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("entries\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}
