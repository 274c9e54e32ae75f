package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// PrintPods writes pods as `kubectl get pods` does: NAME READY STATUS RESTARTS
// AGE, sorted by name, with ages relative to now. Pods of more than one
// namespace get a NAMESPACE column first, as with --all-namespaces.
func PrintPods(w io.Writer, pods []v1.Pod, now time.Time) error {
	return printPods(w, pods, now, tableOptions{namespaces: len(namespacesOf(pods)) > 1})
}

// tableOptions are the columns of a pods table besides kubectl's five.
type tableOptions struct {
	namespaces bool // a NAMESPACE column first
	wide       bool // -o wide: IP NODE NOMINATED NODE READINESS GATES
	labels     bool // --show-labels: LABELS last
	noHeaders  bool
}

func printPods(w io.Writer, pods []v1.Pod, now time.Time, o tableOptions) error {
	tw := newTable(w)
	if !o.noHeaders {
		fmt.Fprintln(tw, strings.Join(podHeader(o), "\t"))
	}
	for _, p := range sortPods(pods) {
		fmt.Fprintln(tw, strings.Join(podCells(&p, now, o), "\t"))
	}
	return tw.Flush()
}

// newTable is a tabwriter with kubectl's settings for tables.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 6, 4, 3, ' ', 0) }

func podHeader(o tableOptions) []string {
	var h []string
	if o.namespaces {
		h = append(h, "NAMESPACE")
	}
	h = append(h, "NAME", "READY", "STATUS", "RESTARTS", "AGE")
	if o.wide {
		h = append(h, "IP", "NODE", "NOMINATED NODE", "READINESS GATES")
	}
	if o.labels {
		h = append(h, "LABELS")
	}
	return h
}

// podCells is a pod's row of the table.
func podCells(p *v1.Pod, now time.Time, o tableOptions) []string {
	r := podRow(p, now)
	var c []string
	if o.namespaces {
		c = append(c, p.Namespace)
	}
	c = append(c, p.Name, r.ready, r.status, r.restarts, since(p.CreationTimestamp.Time, now))
	if o.wide {
		c = append(c, orNone(p.Status.PodIP), orNone(p.Spec.NodeName), orNone(p.Status.NominatedNodeName), readinessGates(p))
	}
	if o.labels {
		c = append(c, labelList(p.Labels))
	}
	return c
}

// readinessGates is kubectl's READINESS GATES cell: gates whose condition is
// True, out of all.
func readinessGates(p *v1.Pod) string {
	if len(p.Spec.ReadinessGates) == 0 {
		return "<none>"
	}
	n := 0
	for _, g := range p.Spec.ReadinessGates {
		if conditionTrue(p, g.ConditionType) {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, len(p.Spec.ReadinessGates))
}

func labelList(labels map[string]string) string {
	if len(labels) == 0 {
		return "<none>"
	}
	var kv []string
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func sortPods(pods []v1.Pod) []v1.Pod {
	sorted := slices.Clone(pods)
	slices.SortFunc(sorted, func(a, b v1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return sorted
}

func namespacesOf(pods []v1.Pod) map[string]bool {
	ns := map[string]bool{}
	for _, p := range pods {
		ns[p.Namespace] = true
	}
	return ns
}

type row struct{ ready, status, restarts string }

// podRow computes the READY, STATUS and RESTARTS cells by kubectl's printPod
// rules (k8s.io/kubernetes/pkg/printers/internalversion).
func podRow(pod *v1.Pod, now time.Time) row {
	restarts, sidecarRestarts := 0, 0
	total := len(pod.Spec.Containers)
	ready := 0
	var lastRestart, lastSidecarRestart time.Time

	reason := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodScheduled && c.Reason == v1.PodReasonSchedulingGated {
			reason = v1.PodReasonSchedulingGated
		}
	}

	sidecar := map[string]bool{}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			sidecar[c.Name] = true
			total++
		}
	}

	initializing := false
	for i, cs := range pod.Status.InitContainerStatuses {
		restarts += int(cs.RestartCount)
		if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(lastRestart) {
			lastRestart = t.FinishedAt.Time
		}
		if sidecar[cs.Name] {
			sidecarRestarts += int(cs.RestartCount)
			if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(lastSidecarRestart) {
				lastSidecarRestart = t.FinishedAt.Time
			}
		}
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			continue
		case sidecar[cs.Name] && cs.Started != nil && *cs.Started:
			if cs.Ready {
				ready++
			}
			continue
		case cs.State.Terminated != nil:
			t := cs.State.Terminated
			switch {
			case t.Reason != "":
				reason = "Init:" + t.Reason
			case t.Signal != 0:
				reason = fmt.Sprintf("Init:Signal:%d", t.Signal)
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
			}
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + cs.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break
	}

	if !initializing || conditionTrue(pod, v1.PodInitialized) {
		restarts, lastRestart = sidecarRestarts, lastSidecarRestart
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := pod.Status.ContainerStatuses[i]
			restarts += int(cs.RestartCount)
			if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(lastRestart) {
				lastRestart = t.FinishedAt.Time
			}
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
				reason = cs.State.Waiting.Reason
			case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
				reason = cs.State.Terminated.Reason
			case cs.State.Terminated != nil && cs.State.Terminated.Signal != 0:
				reason = fmt.Sprintf("Signal:%d", cs.State.Terminated.Signal)
			case cs.State.Terminated != nil:
				reason = fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode)
			case cs.Ready && cs.State.Running != nil:
				hasRunning = true
				ready++
			}
		}
		// a pod with a container still running is not "Completed"
		if reason == "Completed" && hasRunning {
			if conditionTrue(pod, v1.PodReady) {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	terminal := pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
	if pod.DeletionTimestamp != nil && pod.Status.Reason == "NodeLost" {
		reason = "Unknown"
	} else if pod.DeletionTimestamp != nil && !terminal {
		reason = "Terminating"
	}

	restartsCell := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		restartsCell = fmt.Sprintf("%d (%s ago)", restarts, since(lastRestart, now))
	}
	return row{ready: fmt.Sprintf("%d/%d", ready, total), status: reason, restarts: restartsCell}
}

func conditionTrue(pod *v1.Pod, t v1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// since is kubectl's translateTimestampSince.
func since(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}
