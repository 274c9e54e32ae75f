package pleg_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/relisttime"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testshim"
	"github.com/nodekit-dev/nodekit/pleg"
)

const busybox = "nodekit.local/busybox:latest"

// shim is nodekit's CRI shim running in this process on a unix socket, reached
// through k8s.io/cri-client as the agent reaches it. Pods use the host network.
type shim struct {
	*testshim.Shim
	t *testing.T
}

func startShim(t *testing.T) *shim {
	t.Helper()
	testenv.RequireRoot(t)
	base := testenv.TempDir(t, "nkpleg-") // short: socket paths are limited
	var b [4]byte
	rand.Read(b[:])
	cgroupParent := "/nodekit-pleg-test-" + hex.EncodeToString(b[:])
	// Removes what is left under the test's cgroup parent, once the shim stopped.
	t.Cleanup(func() { leakcheck.RemoveCgroups(t, cgroupParent) })
	return &shim{t: t, Shim: testshim.Start(t, testshim.Options{
		Dir:          base,
		CgroupParent: cgroupParent,
		Images:       []string{"busybox"},
		Timeout:      10 * time.Second,
	})}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// runPod starts a host-network sandbox labelled as the kubelet labels pods; it is
// removed at cleanup.
func (s *shim) runPod(name string) (string, *runtimeapi.PodSandboxConfig) {
	s.t.Helper()
	uid := name + "-uid"
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "test", Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(s.Dir, "logs", name),
		Labels: map[string]string{
			kubetypes.KubernetesPodUIDLabel:       uid,
			kubetypes.KubernetesPodNameLabel:      name,
			kubetypes.KubernetesPodNamespaceLabel: "test",
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
	id, err := s.Runtime.RunPodSandbox(ctx(s.t), cfg, "")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Best effort: the test may have removed some of these already.
		cs, _ := s.Runtime.ListContainers(c, &runtimeapi.ContainerFilter{PodSandboxId: id})
		for _, ctr := range cs {
			_ = s.Runtime.StopContainer(c, ctr.Id, 0)
			_ = s.Runtime.RemoveContainer(c, ctr.Id)
		}
		_ = s.Runtime.StopPodSandbox(c, id)
		_ = s.Runtime.RemovePodSandbox(c, id)
	})
	return id, cfg
}

// runContainer starts a container in pod that runs cmd.
func (s *shim) runContainer(pod string, podCfg *runtimeapi.PodSandboxConfig, name string, mounts []*runtimeapi.Mount, cmd ...string) string {
	s.t.Helper()
	labels := map[string]string{kubetypes.KubernetesContainerNameLabel: name}
	for _, k := range []string{kubetypes.KubernetesPodUIDLabel, kubetypes.KubernetesPodNameLabel, kubetypes.KubernetesPodNamespaceLabel} {
		labels[k] = podCfg.Labels[k]
	}
	id, err := s.Runtime.CreateContainer(ctx(s.t), pod, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busybox},
		Command:  cmd,
		LogPath:  name + ".log",
		Labels:   labels,
		Mounts:   mounts,
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}, podCfg)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.Runtime.StartContainer(ctx(s.t), id); err != nil {
		s.t.Fatal(err)
	}
	return id
}

// streamMetrics counts established event streams.
type streamMetrics struct {
	pleg.Metrics
	established atomic.Int64
}

func (m *streamMetrics) ObserveStream(err error) {
	if err == nil {
		m.established.Add(1)
	}
}

type nop struct{}

func (nop) ObserveRelistDuration(time.Duration) {}
func (nop) ObserveRelistInterval(time.Duration) {}
func (nop) SetLastSeen(time.Time)               {}
func (nop) IncEvent(pleg.EventType)             {}
func (nop) IncDiscardedEvent()                  {}
func (nop) ObserveStream(error)                 {}
func (nop) ObserveEventLatency(time.Duration)   {}

// A container's exit reaches the PLEG's events and cache, through container
// events (the evented PLEG still driven by them afterwards) and through
// relisting. How fast is logged, not asserted (a loaded CI box is slow); the
// benchmarks in bench/agent measure it.
func TestContainerExitReachesPLEG(t *testing.T) {
	s := startShim(t)
	for _, mode := range []struct {
		name    string
		evented bool
	}{
		{"evented", true},
		{"generic", false},
	} {
		t.Run(mode.name, func(t *testing.T) {
			pod, podCfg := s.runPod("pleg-" + mode.name)
			uid := types.UID(podCfg.Labels[kubetypes.KubernetesPodUIDLabel])
			cache := pleg.NewCache()
			m := &streamMetrics{Metrics: nop{}}
			o := pleg.Options{Runtime: s.Runtime, Cache: cache, Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			var p pleg.PLEG
			if mode.evented {
				p = pleg.New(o)
			} else {
				p = pleg.NewGeneric(o)
			}
			ctl := t.TempDir()
			id := s.runContainer(pod, podCfg, "exiter", []*runtimeapi.Mount{{ContainerPath: "/ctl", HostPath: ctl}},
				"sh", "-c", "while [ ! -e /ctl/go ]; do sleep 0.01; done; exit 3")
			p.Start()
			defer p.Stop()
			waitEvent(t, p, uid, pleg.ContainerStarted, id, time.Minute)
			if mode.evented {
				waitFor(t, "the event stream", time.Minute, func() bool { return m.established.Load() > 0 })
				if !pleg.IsEvented(p) {
					t.Fatal("the shim's container events are not used")
				}
			}

			exitAt := time.Now()
			if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, p, uid, pleg.ContainerDied, id, time.Minute)
			t.Logf("%s PLEG: container exit → ContainerDied in %v", mode.name, time.Since(exitAt))
			if mode.evented && !pleg.IsEvented(p) {
				t.Error("the evented PLEG fell back to relisting")
			}
			st, err := cache.Get(uid)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.ContainerStatuses) != 1 || st.ContainerStatuses[0].State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ContainerStatuses[0].ExitCode != 3 {
				t.Fatalf("cached containers %v, want %s exited with code 3", st.ContainerStatuses, id)
			}
			if len(st.SandboxStatuses) != 1 || st.SandboxStatuses[0].Id != pod || st.Name != podCfg.Metadata.Name {
				t.Fatalf("cached pod %q sandboxes %v", st.Name, st.SandboxStatuses)
			}

			if err := s.Runtime.RemoveContainer(ctx(t), id); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, p, uid, pleg.ContainerRemoved, id, time.Minute)
			if ok, err := p.Healthy(); !ok {
				t.Fatalf("unhealthy: %v", err)
			}
		})
	}
}

func waitEvent(t *testing.T, p pleg.PLEG, uid types.UID, typ pleg.EventType, id string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-p.Watch():
			if e.ID == uid && e.Type == typ && e.Data == id {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event for %.12s within %v", typ, id, within)
		}
	}
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Relist durations of a generic PLEG against the real shim (read from its
// Metrics, as the benchmark does). PLEG_RELIST_PODS sets how many idle pods to
// create (default 5); e.g. PLEG_RELIST_PODS=100 for the benchmark figures.
func TestRelistRealRuntime(t *testing.T) {
	n := 5
	if v := os.Getenv("PLEG_RELIST_PODS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("PLEG_RELIST_PODS=%q: %v", v, err)
		}
	}
	s := startShim(t)
	for i := range n {
		pod, cfg := s.runPod(fmt.Sprintf("idle-%03d", i))
		s.runContainer(pod, cfg, "sleep", nil, "sleep", "3600")
	}
	timing, err := relisttime.Measure(ctx(t), s.Runtime, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("relist against the shim with %d pods: cold %v (every pod inspected), warm %v", timing.Pods, timing.Cold, timing.Warm)
	if timing.Pods != n || timing.Cold <= 0 || timing.Warm <= 0 {
		t.Fatalf("timing %+v, want %d pods and durations", timing, n)
	}
}
