package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodekit-dev/nodekit/internal/containerid"
)

// nodeName is the node name every agent of the benchmark runs as; static pods
// are called <manifest name>-<node name>.
const nodeName = "nkbench"

// podManifest is a static pod of one busybox container running `sleep 100000`:
// idle, no probes, no volumes. `sleep` is its pid 1 and ignores SIGTERM, so a
// short grace period keeps stopping the pods quick.
func podManifest(name string, restart v1.RestartPolicy) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 1
  containers:
  - name: sleep
    image: %s
    imagePullPolicy: Never
    command: ["sleep", "100000"]
`, name, restart, busybox)
}

// writeManifests writes pods prefix-<i> for i in [from, to) into dir, each
// atomically (the agent ignores hidden files).
func writeManifests(dir, prefix string, from, to int, restart v1.RestartPolicy) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := from; i < to; i++ {
		name := manifestName(prefix, i)
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(podManifest(name, restart)), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name+".yaml")); err != nil {
			return err
		}
	}
	return nil
}

func manifestName(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

// podName is the agent's name of the static pod of manifest name.
func podName(manifest string) string { return manifest + "-" + nodeName }

// podRunning reports whether an API pod status is Running with every container
// running and ready.
func podRunning(s *v1.PodStatus) bool {
	if s.Phase != v1.PodRunning || len(s.ContainerStatuses) == 0 {
		return false
	}
	for _, c := range s.ContainerStatuses {
		if c.State.Running == nil || !c.Ready {
			return false
		}
	}
	return true
}

// criID strips the runtime name from a v1.ContainerStatus container ID
// ("nodekit://abc" → "abc"; a bare ID stays).
func criID(id string) string { return containerid.CRIID(id) }

// recorder is the agent's status sink in the exit and volume benchmarks: it
// timestamps every Put as it arrives, keeps the newest status of each pod, and
// remembers for each container the first Put that showed it terminated, and for
// each pod the first Put that showed all its containers running.
type recorder struct {
	mu         sync.Mutex
	puts       int
	pods       map[types.UID]recordedPod
	terminated map[string]time.Time // CRI container id → first Put showing it terminated
	waiters    map[string]chan struct{}
	started    map[string]time.Time // pod name → first Put showing every container running
	startWait  map[string]chan struct{}
}

// recordedPod is what the recorder keeps of a pod's newest status.
type recordedPod struct {
	name        string
	running     bool   // podRunning
	containerID string // CRI id of the first container
}

func newRecorder() *recorder {
	return &recorder{pods: map[types.UID]recordedPod{}, terminated: map[string]time.Time{}, waiters: map[string]chan struct{}{},
		started: map[string]time.Time{}, startWait: map[string]chan struct{}{}}
}

// Put implements status.Sink.
func (r *recorder) Put(_ context.Context, pod *v1.Pod, status v1.PodStatus, _ uint64) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.puts++
	rp := recordedPod{name: pod.Name, running: podRunning(&status)}
	for _, c := range status.ContainerStatuses {
		id := criID(c.ContainerID)
		if id == "" {
			continue
		}
		if rp.containerID == "" {
			rp.containerID = id
		}
		if c.State.Terminated != nil {
			if _, seen := r.terminated[id]; !seen {
				r.terminated[id] = now
				if ch, ok := r.waiters[id]; ok {
					close(ch)
				} else {
					r.waiters[id] = closedChan
				}
			}
		}
	}
	if _, seen := r.started[pod.Name]; !seen && containersRunning(&status) {
		r.started[pod.Name] = now
		if ch, ok := r.startWait[pod.Name]; ok {
			close(ch)
		} else {
			r.startWait[pod.Name] = closedChan
		}
	}
	r.pods[pod.UID] = rp
	return nil
}

// containersRunning reports whether a pod status shows every container (at
// least one) running, ready or not.
func containersRunning(s *v1.PodStatus) bool {
	for _, c := range s.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return len(s.ContainerStatuses) > 0
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// terminatedCh is closed once a Put showed container id terminated.
func (r *recorder) terminatedCh(id string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch, ok := r.waiters[id]
	if !ok {
		ch = make(chan struct{})
		r.waiters[id] = ch
	}
	return ch
}

// startedCh is closed once a Put showed every container of pod name running.
func (r *recorder) startedCh(name string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch, ok := r.startWait[name]
	if !ok {
		ch = make(chan struct{})
		r.startWait[name] = ch
	}
	return ch
}

// startedAt is when the first Put showing every container of pod name running
// arrived.
func (r *recorder) startedAt(name string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.started[name]
	return t, ok
}

func (r *recorder) terminatedAt(id string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.terminated[id]
	return t, ok
}

// running returns the pods whose newest status is Running with all containers
// ready, by pod name.
func (r *recorder) running() map[string]recordedPod {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]recordedPod{}
	for _, p := range r.pods {
		if p.running {
			out[p.name] = p
		}
	}
	return out
}

func (r *recorder) putCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.puts
}
