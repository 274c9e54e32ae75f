package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/agent/podsource"
)

// fakeAgent is an Agent over the CRI fakes, reading a manifest directory.
type fakeAgent struct {
	*Agent
	rt        *critest.FakeRuntimeService
	manifests string
	done      chan error
	cancel    context.CancelFunc
}

func startFakeAgent(t *testing.T, opts ...func(*Options)) *fakeAgent {
	t.Helper()
	dir := t.TempDir()
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeName = "node1"
	cfg.NodeIP = "192.0.2.10"
	cfg.RootDir = filepath.Join(dir, "root")
	cfg.Kubelet.StaticPodPath = filepath.Join(dir, "manifests")
	cfg.Kubelet.PodLogsDir = filepath.Join(dir, "logs")
	cfg.Kubelet.CgroupRoot = "/nodekit-agent-unit-test"
	noCgroups := false
	cfg.Kubelet.CgroupsPerQOS = &noCgroups // unit tests make no cgroups (no root); the e2e tests do
	if err := os.MkdirAll(cfg.Kubelet.StaticPodPath, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fakeAgent{rt: critest.NewFakeRuntimeService(), manifests: cfg.Kubelet.StaticPodPath, done: make(chan error, 1)}
	o := Options{
		Config:             cfg,
		Runtime:            f.rt,
		Images:             critest.NewFakeImageService(),
		Logger:             discardLogger(),
		DisableEventedPLEG: true, // the fake has no event stream
		DisableServer:      true,
		StopPodsOnExit:     true,
	}
	for _, opt := range opts {
		opt(&o)
	}
	f.Agent, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.done <- f.Run(ctx) }()
	t.Cleanup(func() { f.stop(t) })
	return f
}

// stop ends Run (which stops every pod) and waits for it.
func (f *fakeAgent) stop(t *testing.T) {
	t.Helper()
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.cancel = nil
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30s after its context ended")
	}
}

func (f *fakeAgent) write(t *testing.T, name, manifest string) {
	t.Helper()
	tmp := filepath.Join(f.manifests, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.manifests, name)); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeAgent) pod(name string) *v1.Pod {
	for _, p := range f.Pods() {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// sandboxes returns the fake's sandboxes of pod uid.
func (f *fakeAgent) sandboxes(uid types.UID) []*critest.FakePodSandbox {
	f.rt.Lock()
	defer f.rt.Unlock()
	var out []*critest.FakePodSandbox
	for _, s := range f.rt.Sandboxes {
		if s.Labels[kubetypes.KubernetesPodUIDLabel] == string(uid) {
			out = append(out, s)
		}
	}
	return out
}

// containers returns the IDs of the fake's containers of pod uid.
func (f *fakeAgent) containers(uid types.UID) []string {
	f.rt.Lock()
	defer f.rt.Unlock()
	var out []string
	for id, c := range f.rt.Containers {
		if c.Labels[kubetypes.KubernetesPodUIDLabel] == string(uid) {
			out = append(out, id)
		}
	}
	return out
}

func fakeManifest(name string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
spec:
  containers:
  - name: c
    image: busybox:1.36
`
}

// TestAgentSourceUpdates drives an Agent over the CRI fakes through its
// manifest directory: pods are added, an invalid manifest is reported without
// disturbing the others, a removed manifest's pod is stopped and removed while
// the other keeps running, a sandbox nobody wants is removed by housekeeping,
// and StopPodsOnExit leaves nothing behind.
func TestAgentSourceUpdates(t *testing.T) {
	f := startFakeAgent(t)
	f.write(t, "a.yaml", fakeManifest("a"))
	f.write(t, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: c\n")

	running := func(name string) *v1.Pod {
		t.Helper()
		var pod *v1.Pod
		poll(t, "pod "+name+" running", func() bool {
			pod = f.pod(name)
			return pod != nil && pod.Status.Phase == v1.PodRunning
		})
		return pod
	}
	a := running("a-node1")
	if a.Namespace != "default" || a.Annotations[podsource.AnnotationSource] != podsource.SourceFile {
		t.Errorf("pod a: namespace %q, annotations %v", a.Namespace, a.Annotations)
	}
	if len(a.Status.ContainerStatuses) != 1 || a.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("pod a container statuses %+v", a.Status.ContainerStatuses)
	}
	if a.CreationTimestamp.IsZero() {
		t.Error("pod a has no creation timestamp")
	}
	if sbs := f.sandboxes(a.UID); len(sbs) != 1 || sbs[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod a sandboxes %v", sbs)
	}
	// The invalid manifest is reported with its file and field, and has no pod.
	poll(t, "the invalid manifest reported", func() bool {
		f.mu.RLock()
		defer f.mu.RUnlock()
		for _, err := range f.sourceErrors {
			if strings.Contains(err.Error(), "bad.yaml") && strings.Contains(err.Error(), "image") {
				return true
			}
		}
		return false
	})
	if f.pod("bad-node1") != nil {
		t.Error("the invalid manifest has a pod")
	}

	f.write(t, "b.yaml", fakeManifest("b"))
	b := running("b-node1")
	bContainers := f.containers(b.UID)

	// A sandbox of the agent's that no source wants goes at housekeeping.
	_, err := f.rt.RunPodSandbox(context.Background(), &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "orphan", Namespace: "default", Uid: "orphan-uid"},
		Labels:   map[string]string{kubetypes.KubernetesPodUIDLabel: "orphan-uid", kubetypes.KubernetesPodNameLabel: "orphan"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the orphaned sandbox removed", func() bool { return len(f.sandboxes("orphan-uid")) == 0 })

	if err := os.Remove(filepath.Join(f.manifests, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	poll(t, "pod a gone from the runtime", func() bool {
		return len(f.sandboxes(a.UID)) == 0 && len(f.containers(a.UID)) == 0
	})
	if f.pod("a-node1") != nil {
		t.Error("pod a still listed after its manifest went")
	}
	poll(t, "pod a's status forgotten", func() bool {
		_, ok := f.status.GetPodStatus(a.UID)
		return !ok && !f.workers.known(a.UID)
	})
	// Pod b was not disturbed: same containers, still running.
	if got := f.containers(b.UID); strings.Join(got, ",") != strings.Join(bContainers, ",") {
		t.Errorf("pod b containers changed from %v to %v", bContainers, got)
	}
	if p := f.pod("b-node1"); p == nil || p.Status.Phase != v1.PodRunning {
		t.Errorf("pod b after a's removal: %+v", p)
	}

	f.stop(t)
	f.rt.Lock()
	left := len(f.rt.Sandboxes) + len(f.rt.Containers)
	f.rt.Unlock()
	if left != 0 {
		t.Errorf("StopPodsOnExit left %d sandboxes and containers", left)
	}
}

// TestAgentNeedsARuntime checks New's errors.
func TestAgentNeedsARuntime(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Runtime: critest.NewFakeRuntimeService(), Images: critest.NewFakeImageService()}); err == nil {
		t.Error("New without a config: no error")
	}
	if _, err := New(Options{Config: cfg}); err == nil {
		t.Error("New without a runtime: no error")
	}
	rt := critest.NewFakeRuntimeService()
	rt.InjectError("Version", errors.New("connection refused"))
	_, err = New(Options{Config: cfg, Runtime: rt, Images: critest.NewFakeImageService(), DisableServer: true})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("New with a runtime that does not answer: %v", err)
	}
}

// TestAgentSyncsReadThePLEGCache: a container exit reaches the pod worker as a
// status in the PLEG cache; the worker inspects the runtime only to read back
// what its own syncs changed (here: the stopped sandbox).
func TestAgentSyncsReadThePLEGCache(t *testing.T) {
	f := startFakeAgent(t)
	f.write(t, "once.yaml", strings.Replace(fakeManifest("once"), "spec:\n", "spec:\n  restartPolicy: Never\n", 1))
	var pod *v1.Pod
	poll(t, "pod once running", func() bool {
		pod = f.pod("once-node1")
		return pod != nil && pod.Status.Phase == v1.PodRunning
	})
	reads := func(source string) float64 {
		var m dto.Metric
		if err := f.metrics.statusReads.WithLabelValues(source).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	// (With the generic PLEG the sync after the start may read the cache too:
	// the relist that brought the start event cached the pod first.)
	inspected, cached := reads("inspect"), reads("cache")
	ids := f.containers(pod.UID)
	if len(ids) != 1 {
		t.Fatalf("pod once has containers %v, want one", ids)
	}
	f.rt.Lock()
	c := f.rt.Containers[ids[0]]
	c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.FinishedAt = time.Now().UnixNano()
	c.ExitCode = 0
	c.Reason = "Completed"
	f.rt.Unlock()
	poll(t, "pod once succeeded with its sandbox stopped", func() bool {
		p := f.pod("once-node1")
		sbs := f.sandboxes(pod.UID)
		return p != nil && p.Status.Phase == v1.PodSucceeded && len(sbs) == 1 && sbs[0].State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	})
	if got := reads("cache") - cached; got < 1 {
		t.Errorf("the syncs after the exit read the cache %v times, want at least once", got)
	}
	// Only the read-back after the sandbox was stopped inspects: the sync that
	// saw the exit, and the termination's first read, come from the cache.
	if got := reads("inspect") - inspected; got > 1 {
		t.Errorf("the exit cost %v inspections, want at most 1 (the final status after stopping the sandbox)", got)
	}
}
