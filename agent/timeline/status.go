package timeline

import (
	"strconv"

	v1 "k8s.io/api/core/v1"
)

// StatusChanged records into the pod's timeline how status differs from old
// (the version it replaces), as Status entries with the time of the call:
//
//   - the phase: "phase Pending -> Running" (the status's reason and message
//     with it, e.g. Evicted);
//   - each condition whose status flipped: "condition Ready False -> True",
//     with its reason and message (conditions a first status brings are not
//     flips);
//   - each container whose state changed or that was replaced: "state
//     Running -> Terminated (Error)", with the exit code and message of a
//     termination or the message of a wait (a container's first Waiting is
//     not a change);
//   - each container whose readiness flipped: "ready false -> true".
//
// The signature fits the status manager's change hook
// (agent/status.WithChanges): it is quick and calls nothing back.
func (r *Recorder) StatusChanged(pod *v1.Pod, old, status *v1.PodStatus) {
	if pod == nil || status == nil {
		return
	}
	l := r.Pod(pod.UID)
	if !l.Enabled() {
		return
	}
	if old == nil {
		old = &v1.PodStatus{}
	}
	if old.Phase != status.Phase {
		what := "phase " + string(status.Phase)
		if old.Phase != "" {
			what = "phase " + string(old.Phase) + " -> " + string(status.Phase)
		}
		l.Record(Entry{Kind: Status, What: what, Reason: status.Reason, Message: status.Message})
	}
	for _, c := range status.Conditions {
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status != c.Status {
				l.Record(Entry{Kind: Status, What: "condition " + string(c.Type) + " " + string(o.Status) + " -> " + string(c.Status),
					Reason: c.Reason, Message: c.Message})
			}
		}
	}
	containers(l, old.InitContainerStatuses, status.InitContainerStatuses)
	containers(l, old.ContainerStatuses, status.ContainerStatuses)
	containers(l, old.EphemeralContainerStatuses, status.EphemeralContainerStatuses)
}

// containers records the state and readiness changes from old to cur.
func containers(l Log, old, cur []v1.ContainerStatus) {
	for i := range cur {
		c := &cur[i]
		var o *v1.ContainerStatus
		for j := range old {
			if old[j].Name == c.Name {
				o = &old[j]
				break
			}
		}
		from, to := "", stateName(&c.State)
		if o != nil {
			from = stateName(&o.State)
		}
		replaced := o != nil && o.ContainerID != "" && c.ContainerID != "" && o.ContainerID != c.ContainerID
		switch {
		case o == nil && c.State.Waiting != nil:
			// A new container's first wait: nothing happened yet.
		case from != to || replaced:
			what := "state " + to
			if from != "" {
				what = "state " + from + " -> " + to
			}
			e := Entry{Kind: Status, Container: c.Name, What: what}
			switch s := c.State; {
			case s.Waiting != nil:
				e.Reason, e.Message = s.Waiting.Reason, s.Waiting.Message
			case s.Terminated != nil:
				e.Reason, e.Message = s.Terminated.Reason, exitText(s.Terminated)
			}
			if o != nil && c.RestartCount != o.RestartCount {
				e.Message = join(e.Message, "restart count "+strconv.Itoa(int(c.RestartCount)))
			}
			l.Record(e)
		}
		if o != nil && o.Ready != c.Ready {
			l.Record(Entry{Kind: Status, Container: c.Name, What: "ready " + strconv.FormatBool(o.Ready) + " -> " + strconv.FormatBool(c.Ready)})
		}
	}
}

// stateName is "Running", "Waiting (reason)" or "Terminated (reason)".
func stateName(s *v1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running"
	case s.Waiting != nil:
		return withReason("Waiting", s.Waiting.Reason)
	case s.Terminated != nil:
		return withReason("Terminated", s.Terminated.Reason)
	}
	return ""
}

func withReason(s, reason string) string {
	if reason == "" {
		return s
	}
	return s + " (" + reason + ")"
}

func exitText(t *v1.ContainerStateTerminated) string {
	s := "exit code " + strconv.Itoa(int(t.ExitCode))
	if t.Signal != 0 {
		s += ", signal " + strconv.Itoa(int(t.Signal))
	}
	return join(s, t.Message)
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
