package agent

import (
	"fmt"
	"maps"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/pleg"
	"github.com/nodekit-dev/nodekit/probes"
)

// What the agent itself puts in the pods' timelines (agent/timeline), and
// the adapter it hands the probes. The rest is recorded by the parts: the pod
// runtime (podruntime.Options.Timeline), the status manager
// (status.WithChanges), the instrumented CRI client (instrument.go).

// recordSourceChange records what the sources did to a desired pod, given
// the version the agent had before (prev, nil for a new pod): "added" (the
// pod's timeline starts), "updated" when its spec, labels or annotations
// changed, "deleted" when the API server deleted it (with the grace period);
// nothing when it is the same pod.
func recordSourceChange(rec *timeline.Recorder, prev, pod *v1.Pod) {
	if rec == nil || pod == nil {
		return
	}
	from := "source " + sourceName(pod)
	switch {
	case prev == nil:
		rec.Add(pod)
		rec.Record(pod.UID, timeline.Entry{Kind: timeline.Source, What: "added", Message: from})
	case pod.DeletionTimestamp != nil && prev.DeletionTimestamp == nil:
		rec.Add(pod)
		msg := from
		if g := pod.DeletionGracePeriodSeconds; g != nil {
			msg += fmt.Sprintf(", grace period %ds", *g)
		}
		rec.Record(pod.UID, timeline.Entry{Kind: timeline.Source, What: "deleted", Message: msg})
	case podChanged(prev, pod):
		rec.Add(pod)
		rec.Record(pod.UID, timeline.Entry{Kind: timeline.Source, What: "updated", Message: from})
	}
}

// recordDeletion records a pod the API server deleted: "deleted" once, when
// it was desired before (prev) or first seen deleted (then "added" first);
// later versions as updates of the one in prevDeleting.
func recordDeletion(rec *timeline.Recorder, prev *v1.Pod, prevDeleting []*v1.Pod, pod *v1.Pod) {
	for _, old := range prevDeleting {
		if old.UID == pod.UID {
			recordSourceChange(rec, old, pod)
			return
		}
	}
	if prev == nil {
		recordSourceChange(rec, nil, pod)
		undeleted := *pod
		undeleted.DeletionTimestamp = nil
		prev = &undeleted
	}
	recordSourceChange(rec, prev, pod)
}

// recordSourceRemoved records that the pod left the desired set: its manifest
// or object is gone. Its timeline is kept; Forget it once the pod is cleaned
// up.
func recordSourceRemoved(rec *timeline.Recorder, pod *v1.Pod) {
	if rec == nil || pod == nil {
		return
	}
	rec.Record(pod.UID, timeline.Entry{Kind: timeline.Source, What: "removed", Message: "source " + sourceName(pod)})
}

func sourceName(pod *v1.Pod) string {
	if s := pod.Annotations[podsource.AnnotationSource]; s != "" {
		return s
	}
	return "code"
}

// podChanged says whether a source's new version of a pod differs from the
// previous one: by resourceVersion for the API's pods, by spec, labels and
// annotations otherwise (a manifest's pods change UID when they change).
func podChanged(prev, pod *v1.Pod) bool {
	if prev == pod {
		return false
	}
	if prev.ResourceVersion != "" && pod.ResourceVersion != "" {
		return prev.ResourceVersion != pod.ResourceVersion
	}
	return !maps.Equal(prev.Labels, pod.Labels) || !maps.Equal(prev.Annotations, pod.Annotations) ||
		!equality.Semantic.DeepEqual(prev.Spec, pod.Spec)
}

// recordPLEG records a pod lifecycle event, naming the container and, for a
// container that died, its exit code, from the pod's runtime status (the
// PLEG's cache; nil: the container's ID only).
func recordPLEG(rec *timeline.Recorder, ev *pleg.Event, rs *pleg.PodStatus) {
	if rec == nil || ev == nil {
		return
	}
	e := timeline.Entry{Kind: timeline.PLEG, What: string(ev.Type)}
	if ev.Type == pleg.PodSync {
		e.Message = "sandbox " + shortID(ev.Data)
		rec.Record(ev.ID, e)
		return
	}
	e.Message = "container " + shortID(ev.Data)
	if rs != nil {
		for _, c := range rs.ContainerStatuses {
			if c.GetId() != ev.Data {
				continue
			}
			e.Container = c.GetMetadata().GetName()
			if ev.Type == pleg.ContainerDied {
				e.Message += fmt.Sprintf(": exit code %d", c.GetExitCode())
				if r := c.GetReason(); r != "" {
					e.Reason = r
				}
			}
			break
		}
	}
	rec.Record(ev.ID, e)
}

// timelineJournal puts what the probes find in the pods' timelines
// (probes.Options.Journal).
type timelineJournal struct{ rec *timeline.Recorder }

func (j timelineJournal) Note(n probes.Note) {
	j.rec.Record(n.PodUID, timeline.Entry{Kind: timeline.Probe, Container: n.Container, What: n.What,
		Reason: n.Reason, Message: strings.TrimSpace(n.Message), Error: n.Err, Took: n.Took, Event: n.EventType})
}
