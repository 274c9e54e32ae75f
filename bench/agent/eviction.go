package main

// Part (c): eviction reaction. An in-process shim and agent with a hard
// memory.available threshold 768 MiB below what the node has free; in each run
// a BestEffort pod (given in code, so evictable) allocates memory in 64 MiB
// steps up to 1.5 GiB. A sampler reads memory.available as the agent computes
// it (capacity − the root memory cgroup's working set) every 2 ms and notes when
// it first falls below the threshold; the reaction is from then to the hog
// container's FinishedAt in the runtime (the hog exits on SIGTERM). The kubelet
// checks every 10 s; nodekit also arms the kernel's memcg threshold notification.
//
// Part (d): image GC. Unused images of 1 GiB in all are imported, beside the
// busybox image a running pod uses; the image GC's DeleteUnusedImages (what the
// eviction manager calls under disk pressure) is timed, and the in-use image
// must survive it.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	kubetypes "k8s.io/kubelet/pkg/types"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
	"github.com/nodekit-dev/nodekit/imagegc"
)

type evictionResult struct {
	Runs      int           `json:"runs"`
	Threshold string        `json:"threshold"`
	Latency   stats.Summary `json:"cross_to_killed"`
	Samples   []float64     `json:"samples_ms"`
}

type imageGCResult struct {
	Images      int     `json:"images"`
	UnusedBytes int64   `json:"unused_bytes"`
	FreedBytes  uint64  `json:"freed_bytes"`
	Seconds     float64 `json:"seconds"`
	InUseKept   bool    `json:"in_use_image_kept"`
}

// memoryAvailable is memory.available as the agent computes it: MemTotal minus
// the root memory cgroup's working set (usage − total_inactive_file).
func memoryAvailable() (int64, error) {
	total, err := meminfo("MemTotal")
	if err != nil {
		return 0, err
	}
	usage, err := readInt("/sys/fs/cgroup/memory/memory.usage_in_bytes")
	if err != nil {
		return 0, err
	}
	inactive, err := memStat("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file")
	if err != nil {
		return 0, err
	}
	return total - (usage - inactive), nil
}

func readInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

func memStat(path, key string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

func meminfo(key string) (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == key+":" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/meminfo: no %s", key)
}

// startAgentWith runs an agent on s with pods from code, configured by adjust;
// stop stops it (and its pods) and waits.
func startAgentWith(w *workspace, s *shim, name string, adjust func(*agent.Config)) (*agent.Agent, *podsource.Pods, func() error, error) {
	dir := w.path(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := agent.LoadConfig("")
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.RootDir = filepath.Join(dir, "root")
	cfg.NodeName = nodeName
	cfg.NodeIP = "127.0.0.1"
	cfg.Kubelet.PodLogsDir = filepath.Join(dir, "logs")
	cfg.Kubelet.CgroupRoot = w.cgroup + "/" + name
	adjust(cfg)
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	klog.SetSlogLogger(log.With("component", "cri-client"))
	pods, err := podsource.NewPods(podsource.PodsOptions{NodeName: nodeName})
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := agent.New(agent.Options{Config: cfg, Runtime: s.rt, Images: s.img, Logger: log,
		Sources: []podsource.Source{pods}, StopPodsOnExit: true, DisableServer: true})
	if err != nil {
		logf.Close()
		return nil, nil, nil, err
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	stop := func() error {
		defer logf.Close()
		defer klog.SetSlogLogger(discardLogger)
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(4 * time.Minute):
			return errors.New("the agent did not stop within 4 minutes")
		}
	}
	return a, pods, stop, nil
}

func busyboxContainer(script string) v1.Container {
	return v1.Container{Name: "main", Image: "nodekit.local/busybox:latest", ImagePullPolicy: v1.PullIfNotPresent,
		Command: []string{"sh", "-c", script}}
}

func memoryPressure(ctx context.Context, a *agent.Agent) bool {
	n, err := a.Node(ctx)
	if err != nil {
		return true
	}
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeMemoryPressure {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func findPod(a *agent.Agent, name string) *v1.Pod {
	for _, p := range a.Pods() {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// pollUntil polls cond every 10 ms until it holds, ctx ends or limit passes.
func pollUntil(ctx context.Context, what string, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func measureEviction(ctx context.Context, w *workspace, o options) (*evictionResult, error) {
	net, err := w.network()
	if err != nil {
		return nil, err
	}
	fmt.Println("eviction: starting an in-process shim")
	s, err := startShim(ctx, w, shimOptions{bin: o.bin, image: filepath.Join(o.images, "busybox.tar"), dir: w.path("shim-ev"),
		cniConfDir: net.confDir, cgroupParent: w.cgroup + "/shim-ev"})
	if err != nil {
		return nil, err
	}
	avail, err := memoryAvailable()
	if err != nil {
		return nil, err
	}
	threshold := avail - 768<<20
	res := &evictionResult{Threshold: fmt.Sprintf("%dMi", threshold>>20)}
	a, pods, stop, err := startAgentWith(w, s, "eviction", func(c *agent.Config) {
		c.Kubelet.EvictionHard = map[string]string{"memory.available": res.Threshold}
		c.Kubelet.EvictionPressureTransitionPeriod = metav1.Duration{Duration: time.Second}
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	fmt.Printf("eviction: memory.available %d MiB, threshold %s, %d runs\n", avail>>20, res.Threshold, o.evictionRuns)
	// The hog stops on SIGTERM, as a program that handles it does: evictions give
	// hard-threshold pods a grace period of 1 s, raised to the kubelet's
	// minimum of 2 s per container, so a pid 1 ignoring SIGTERM dies 2 s later.
	hog := `trap 'kill $pid; exit 143' TERM; busybox awk 'BEGIN { s = sprintf("%1048576s", ""); for (i = 0; i < 1536; i++) { a[i] = s i; if (i % 64 == 63) system("sleep 0.1") }; while (1) system("sleep 1") }' & pid=$!; wait $pid`
	var lat []time.Duration
	for i := range o.evictionRuns {
		if err := pollUntil(ctx, "MemoryPressure False", 2*time.Minute, func() bool { return !memoryPressure(ctx, a) }); err != nil {
			return res, err
		}
		// The sampler notes the first moment memory.available is below the threshold.
		var crossed atomic.Int64
		sctx, stopSampler := context.WithCancel(ctx)
		go func() {
			for sctx.Err() == nil {
				if v, err := memoryAvailable(); err == nil && v < threshold {
					crossed.CompareAndSwap(0, time.Now().UnixNano())
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		name := fmt.Sprintf("hog-%d", i)
		pod, err := pods.Add(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench"},
			Spec: v1.PodSpec{Containers: []v1.Container{busyboxContainer(hog)}}})
		if err != nil {
			stopSampler()
			return res, err
		}
		err = pollUntil(ctx, name+" evicted", 2*time.Minute, func() bool {
			p := findPod(a, name)
			return p != nil && p.Status.Phase == v1.PodFailed
		})
		stopSampler()
		if err != nil {
			return res, err
		}
		// The pod is Failed once the eviction is decided; its container is killed
		// right after.
		var finished int64
		if err := pollUntil(ctx, name+"'s container killed", time.Minute, func() bool {
			finished, _ = containerFinished(ctx, s, string(pod.UID))
			return finished != 0
		}); err != nil {
			return res, err
		}
		if c := crossed.Load(); c != 0 {
			d := time.Duration(finished - c)
			lat = append(lat, d)
			res.Samples = append(res.Samples, float64(d.Microseconds())/1000)
			fmt.Printf("eviction: run %d: %s from crossing the threshold to the hog killed\n", i+1, d.Round(time.Millisecond))
		}
		pods.Remove(pod.UID)
		if err := pollUntil(ctx, name+" removed", 2*time.Minute, func() bool { return findPod(a, name) == nil }); err != nil {
			return res, err
		}
	}
	res.Runs = len(lat)
	res.Latency = stats.Summarize(lat)
	return res, nil
}

// containerFinished is the FinishedAt (ns) of the pod's container in the runtime.
func containerFinished(ctx context.Context, s *shim, uid string) (int64, error) {
	cs, err := s.rt.ListContainers(ctx, &runtime.ContainerFilter{LabelSelector: map[string]string{kubetypes.KubernetesPodUIDLabel: uid}})
	if err != nil || len(cs) == 0 {
		return 0, fmt.Errorf("the hog's container: %v (%d found)", err, len(cs))
	}
	st, err := s.rt.ContainerStatus(ctx, cs[0].GetId(), false)
	if err != nil {
		return 0, err
	}
	return st.GetStatus().GetFinishedAt(), nil
}

func measureImageGC(ctx context.Context, w *workspace, o options) (*imageGCResult, error) {
	net, err := w.network()
	if err != nil {
		return nil, err
	}
	fmt.Println("imagegc: starting an in-process shim")
	s, err := startShim(ctx, w, shimOptions{bin: o.bin, image: filepath.Join(o.images, "busybox.tar"), dir: w.path("shim-gc"),
		cniConfDir: net.confDir, cgroupParent: w.cgroup + "/shim-gc"})
	if err != nil {
		return nil, err
	}
	const images, each = 8, 128 << 20
	res := &imageGCResult{Images: images, UnusedBytes: images * each}
	fmt.Printf("imagegc: importing %d unused images of %d MiB\n", images, each>>20)
	for i := range images {
		img, err := random.Image(each, 1)
		if err != nil {
			return res, err
		}
		tag, err := name.NewTag(fmt.Sprintf("nodekit.local/unused-%d:latest", i))
		if err != nil {
			return res, err
		}
		var buf bytes.Buffer
		if err := tarball.Write(tag, img, &buf); err != nil {
			return res, err
		}
		if _, err := s.srv.Images().Import(ctx, &buf); err != nil {
			return res, err
		}
	}
	// A pod keeps busybox in use.
	a, pods, stop, err := startAgentWith(w, s, "imagegc", func(c *agent.Config) {})
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	if _, err := pods.Add(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "user", Namespace: "bench"},
		Spec: v1.PodSpec{Containers: []v1.Container{busyboxContainer("sleep 100000")}}}); err != nil {
		return res, err
	}
	if err := pollUntil(ctx, "the busybox pod running", 2*time.Minute, func() bool {
		p := findPod(a, "user")
		return p != nil && p.Status.Phase == v1.PodRunning
	}); err != nil {
		return res, err
	}
	gc, err := imagegc.New(imagegc.Options{Images: s.img, Runtime: s.rt, MinAge: time.Nanosecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	// The collector first sees the images (as the agent's does at start), then
	// removes them on demand, as the eviction manager asks it to.
	if err := gc.GarbageCollect(ctx); err != nil {
		return res, err
	}
	if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
		return res, err
	}
	start := time.Now()
	res.FreedBytes, err = gc.DeleteUnusedImages(ctx)
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		return res, err
	}
	st, err := s.img.ImageStatus(ctx, &runtime.ImageSpec{Image: "nodekit.local/busybox:latest"}, false)
	res.InUseKept = err == nil && st.GetImage() != nil
	left, err := s.img.ListImages(ctx, nil)
	if err != nil {
		return res, err
	}
	fmt.Printf("imagegc: freed %d MiB in %.3f s; %d images left; in-use image kept: %v\n", res.FreedBytes>>20, res.Seconds, len(left), res.InUseKept)
	if !res.InUseKept {
		return res, errors.New("imagegc: the image a running pod uses was deleted")
	}
	return res, nil
}
