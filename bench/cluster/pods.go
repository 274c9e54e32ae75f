package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// busybox is the image of every pod: imported into each runtime, never pulled
// (imagePullPolicy Never: a missing image fails the pod rather than trying a
// registry).
const busybox = "nodekit.local/busybox:latest"

// namespace holds the benchmark's pods (its default ServiceAccount exists
// once the control plane is up).
const namespace = "default"

// idlePod is a pod of one busybox container running `sleep 100000` (what
// bench/agent's idle pods run), bound to node: no probes, no volumes but the
// service account token every pod gets. sleep is pid 1 and ignores SIGTERM:
// a grace period of 1 s keeps deleting quick.
func idlePod(name, node string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": "nkcl"}},
		Spec: v1.PodSpec{
			NodeName:                      node,
			RestartPolicy:                 v1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []v1.Container{{
				Name: "sleep", Image: busybox, ImagePullPolicy: v1.PullNever,
				Command: []string{"sleep", "100000"},
			}},
		},
	}
}

// triggerPod is a pod whose container waits for a line on the FIFO
// /trigger/go (a hostPath directory of the benchmark's) and then exits 0:
// restartPolicy Never, so the pod ends Succeeded.
func triggerPod(name, node, hostDir string) *v1.Pod {
	p := idlePod(name, node)
	p.Spec.RestartPolicy = v1.RestartPolicyNever
	c := &p.Spec.Containers[0]
	c.Command = []string{"sh", "-c", "read x < /trigger/go; exit 0"}
	c.VolumeMounts = []v1.VolumeMount{{Name: "trigger", MountPath: "/trigger"}}
	p.Spec.Volumes = []v1.Volume{{Name: "trigger", VolumeSource: v1.VolumeSource{
		HostPath: &v1.HostPathVolumeSource{Path: hostDir, Type: ptr.To(v1.HostPathDirectory)}}}}
	return p
}

// podTimes are when the watch first showed a pod in a state (zero: not yet).
type podTimes struct {
	running, ready, succeeded, failed, deleted time.Time
	// terminated: a container status shows the container terminated.
	terminated time.Time
	reason     string // why it failed or is waiting, for errors
}

// podWatch follows the pods of one node through one watch (re-opened from
// the last resource version when the apiserver ends it) and timestamps, on
// receipt, the first event showing each pod Running, Ready, Succeeded,
// Failed, deleted.
type podWatch struct {
	mu      sync.Mutex
	pods    map[string]*podTimes
	changed chan struct{} // closed and replaced at every event
	err     error
}

// watchPods starts following the pods bound to node; ctx ends it.
func watchPods(ctx context.Context, c kubernetes.Interface, node string) (*podWatch, error) {
	pw := &podWatch{pods: map[string]*podTimes{}, changed: make(chan struct{})}
	sel := "spec.nodeName=" + node
	list, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	rv := list.ResourceVersion
	go func() {
		for ctx.Err() == nil {
			w, err := c.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				if ctx.Err() == nil {
					pw.fail(fmt.Errorf("watch pods: %w", err))
				}
				return
			}
			for ev := range w.ResultChan() {
				now := time.Now()
				switch ev.Type {
				case watch.Error:
					w.Stop()
					pw.fail(fmt.Errorf("watch pods: %v", apierrors.FromObject(ev.Object)))
					return
				case watch.Bookmark:
					if p, ok := ev.Object.(*v1.Pod); ok {
						rv = p.ResourceVersion
					}
					continue
				}
				p, ok := ev.Object.(*v1.Pod)
				if !ok {
					continue
				}
				rv = p.ResourceVersion
				pw.observe(now, ev.Type, p)
			}
		}
	}()
	return pw, nil
}

func (pw *podWatch) observe(now time.Time, typ watch.EventType, p *v1.Pod) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	t := pw.pods[p.Name]
	if t == nil {
		t = &podTimes{}
		pw.pods[p.Name] = t
	}
	set := func(at *time.Time, cond bool) {
		if cond && at.IsZero() {
			*at = now
		}
	}
	set(&t.deleted, typ == watch.Deleted)
	set(&t.running, p.Status.Phase == v1.PodRunning)
	set(&t.succeeded, p.Status.Phase == v1.PodSucceeded)
	set(&t.failed, p.Status.Phase == v1.PodFailed)
	for _, c := range p.Status.Conditions {
		set(&t.ready, c.Type == v1.PodReady && c.Status == v1.ConditionTrue)
	}
	t.reason = p.Status.Reason
	for _, cs := range p.Status.ContainerStatuses {
		set(&t.terminated, cs.State.Terminated != nil)
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			t.reason = cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
		}
	}
	close(pw.changed)
	pw.changed = make(chan struct{})
}

func (pw *podWatch) fail(err error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.err = err
	close(pw.changed)
	pw.changed = make(chan struct{})
}

// wait waits until cond holds for the times of every pod in names, and
// returns their times; an error when the watch failed, a pod failed (unless
// cond is about that), limit passed, ctx ended or alive reports the agent gone.
func (pw *podWatch) wait(ctx context.Context, names []string, what string, limit time.Duration, alive func() error, cond func(*podTimes) bool) (map[string]podTimes, error) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	// alive is polled: a dead agent sends no event.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		pw.mu.Lock()
		ch, err := pw.changed, pw.err
		out := map[string]podTimes{}
		var pending []string
		var lastReason string
		for _, n := range names {
			t := pw.pods[n]
			if t != nil && cond(t) {
				out[n] = *t
				continue
			}
			pending = append(pending, n)
			if t != nil && t.reason != "" {
				lastReason = n + ": " + t.reason
			}
		}
		pw.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if len(pending) == 0 {
			return out, nil
		}
		select {
		case <-ch:
		case <-tick.C:
			if err := alive(); err != nil {
				return nil, err
			}
		case <-deadline.C:
			return nil, fmt.Errorf("%d of %d pods not %s after %s (first: %s; %s)", len(pending), len(names), what, limit, pending[0], lastReason)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// openTrigger makes the FIFO dir/go for a trigger pod.
func makeTrigger(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return syscall.Mkfifo(filepath.Join(dir, "go"), 0o666)
}

// pull writes a line into the FIFO dir/go once its reader (the container's
// shell) has it open, polling every millisecond until limit, and returns the
// time just before the write: from then the container exits within
// microseconds (the shell's read returns, it exits).
func pull(ctx context.Context, dir string, limit time.Duration, alive func() error) (time.Time, error) {
	path := filepath.Join(dir, "go")
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	polls := 0
	for {
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err == nil {
			t := time.Now()
			_, werr := syscall.Write(fd, []byte("go\n"))
			syscall.Close(fd)
			if werr != nil {
				return t, fmt.Errorf("write %s: %w", path, werr)
			}
			return t, nil
		}
		if !errors.Is(err, syscall.ENXIO) { // ENXIO: no reader yet
			return time.Time{}, fmt.Errorf("open %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no reader on %s after %s", path, limit)
		}
		if polls++; polls%1000 == 0 {
			if err := alive(); err != nil {
				return time.Time{}, err
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}
