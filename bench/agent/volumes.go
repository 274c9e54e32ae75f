package main

// Part (e): volumes. An in-process shim and agent, as in (a): static pods from
// a manifest directory, ConfigMaps and Secrets from an object manifest
// directory (Config.ObjectManifestPath, watched by package objects), the
// status sink timestamping every Put.
//
// Start: manifest → the first status Put showing the container running, for a
// pod with six volumes (configMap, secret, downwardAPI, projected, emptyDir
// Memory, hostPath) and for the same pod without them, interleaved (with,
// without, with, without ...), each pod deleted and its teardown awaited
// before the next; one pair first as a warm-up, not counted. Every pod with
// volumes is checked through ExecSync (one file of each volume, and the
// tmpfs of the secret and the Memory emptyDir).
//
// Propagation: one pod reads its configMap volume in a loop of shell builtins
// (read, test, echo: no fork; a 1 ms `read -t` on a FIFO between reads) and
// writes each new value to a hostPath file. The object manifest is rewritten
// atomically (a dotfile renamed over it) with a new value n times; each update
// is timed from the rename until the volume's file on the host shows the new
// value, and until the container's copy does (inotify on both directories).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	kubetypes "k8s.io/kubelet/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/bench/internal/leftover"
	"github.com/nodekit-dev/nodekit/bench/internal/mdtable"
	"github.com/nodekit-dev/nodekit/bench/internal/stats"
	"github.com/nodekit-dev/nodekit/objects"
	"github.com/nodekit-dev/nodekit/volumes"
)

type volumeOptions struct {
	runs    int // pods started per variant (with and without volumes), after a warm-up pair
	updates int // configMap updates timed
}

const (
	// volumeTimeout bounds one pod start, one teardown, one update.
	volumeTimeout = 30 * time.Second
	// The pause before each configMap update, and before each pod start: at
	// least the gap, plus a random part up to the jitter (so the agent's
	// periodic work, housekeeping every 2 s, the eviction pass every 10 s,
	// falls anywhere in the measurements, alike for both kinds of pod).
	updateGap, updateJitter = 200 * time.Millisecond, 300 * time.Millisecond
	startGap, startJitter   = 100 * time.Millisecond, 200 * time.Millisecond
	// readerPoll is the propagation reader's pause between two reads.
	readerPoll = time.Millisecond
)

// sixVolumes names the volume kinds of the pod with volumes, in the order of
// its spec.
const sixVolumes = "configMap, secret, downwardAPI, projected, emptyDir Memory, hostPath"

// volumesResult is part (e).
type volumesResult struct {
	Volumes string `json:"volumes"`
	// Runs: pods started per variant (the warm-up pair not counted).
	Runs    int           `json:"runs"`
	Without stats.Summary `json:"manifest_to_running_without_volumes"`
	With    stats.Summary `json:"manifest_to_running_with_volumes"`
	// OverheadP50Ms and OverheadP95Ms: p50(with) − p50(without), p95 likewise.
	OverheadP50Ms float64 `json:"overhead_p50_ms"`
	OverheadP95Ms float64 `json:"overhead_p95_ms"`
	// Paired: each with-volumes run minus the without-volumes run after it.
	Paired stats.Summary `json:"paired_difference"`
	// Teardown: manifest removed → the pod gone from the agent, its sandbox
	// from the runtime and its directory from the disk (10 ms polls).
	TeardownWithout stats.Summary `json:"teardown_without_volumes"`
	TeardownWith    stats.Summary `json:"teardown_with_volumes"`
	// ContentChecks: pods with volumes whose files were checked through
	// ExecSync (every one, the warm-up included).
	ContentChecks int `json:"content_checks"`
	// SetUp and TearDown: volumes.Manager.SetUp and TearDown of the same six
	// volumes alone, in the benchmark process (no pod, no runtime).
	SetUp          stats.Summary `json:"volume_setup_alone"`
	TearDown       stats.Summary `json:"volume_teardown_alone"`
	SamplesWithout []float64     `json:"samples_without_ms"`
	SamplesWith    []float64     `json:"samples_with_ms"`

	Updates int `json:"updates"`
	// ToVolumeFile: the object file renamed → the configMap volume's file on
	// the host holds the new value. ToContainer: → the container's copy of it
	// (a hostPath file) does.
	ToVolumeFile     stats.Summary `json:"rename_to_volume_file"`
	ToContainer      stats.Summary `json:"rename_to_container"`
	ReaderPollMs     float64       `json:"reader_poll_ms"`
	SamplesContainer []float64     `json:"samples_container_ms"`
}

// overhead is p50(with) − p50(without) and p95(with) − p95(without).
func (r *volumesResult) overhead() (p50, p95 time.Duration) {
	return r.With.P50 - r.Without.P50, r.With.P95 - r.Without.P95
}

// volumeBench is the agent of part (e) and its directories.
type volumeBench struct {
	a       *agent.Agent
	s       *shim
	rec     *recorder
	root    string // the agent's root dir
	pods    string // static pod manifests
	objects string // ConfigMap and Secret manifests
	host    string // the hostPath volume
	done    <-chan struct{}
}

// benchObjects are the objects the pod with volumes uses.
const benchObjects = `apiVersion: v1
kind: ConfigMap
metadata:
  name: bench-cfg
data:
  v: cfg-v1
---
apiVersion: v1
kind: Secret
metadata:
  name: bench-sec
stringData:
  password: s3cret
`

// propObject is the configMap of the propagation pod, holding value.
func propObject(value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-prop\ndata:\n  v: %s\n", value)
}

func measureVolumes(ctx context.Context, w *workspace, o options) (res *volumesResult, err error) {
	net, err := w.network()
	if err != nil {
		return nil, err
	}
	fmt.Println("volumes: starting an in-process shim")
	s, err := startShim(ctx, w, shimOptions{bin: o.bin, image: filepath.Join(o.images, "busybox.tar"), dir: w.path("shim-vol"),
		cniConfDir: net.confDir, cgroupParent: w.cgroup + "/shim-vol"})
	if err != nil {
		return nil, err
	}
	dir := w.path("volumes")
	b := &volumeBench{s: s, rec: newRecorder(), root: filepath.Join(dir, "root"), pods: filepath.Join(dir, "manifests"),
		objects: filepath.Join(dir, "objects"), host: filepath.Join(dir, "host")}
	for _, d := range []string{b.pods, b.objects, b.host} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(b.host, "hello"), []byte("hello\n"), 0o644); err != nil {
		return nil, err
	}
	if err := writeAtomic(b.objects, "bench.yaml", benchObjects, nil); err != nil {
		return nil, err
	}
	if err := writeAtomic(b.objects, "prop.yaml", propObject("p-000"), nil); err != nil {
		return nil, err
	}

	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cfg, err := agent.LoadConfig("")
	if err != nil {
		return nil, err
	}
	cfg.RootDir = b.root
	cfg.NodeName = nodeName
	cfg.NodeIP = "127.0.0.1"
	cfg.ObjectManifestPath = b.objects
	cfg.Kubelet.StaticPodPath = b.pods
	cfg.Kubelet.PodLogsDir = filepath.Join(dir, "logs")
	cfg.Kubelet.CgroupRoot = w.cgroup + "/volumes"
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	klog.SetSlogLogger(log.With("component", "cri-client"))
	defer klog.SetSlogLogger(discardLogger)
	b.a, err = agent.New(agent.Options{
		Config:         cfg,
		Runtime:        s.rt,
		Images:         s.img,
		Logger:         log,
		Registry:       prometheus.NewRegistry(),
		StopPodsOnExit: true,
		DisableServer:  true,
		StatusSink:     b.rec,
	})
	if err != nil {
		return nil, err
	}
	// The agent runs until this function is done (not until ctx: on an
	// interrupt it must still stop its pods).
	actx, stopAgent := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.done = done
	var runErr error
	go func() {
		runErr = b.a.Run(actx)
		close(done)
	}()
	defer func() {
		fmt.Println("volumes: stopping the agent and its pods")
		stopAgent()
		select {
		case <-done:
			if runErr != nil && err == nil {
				err = fmt.Errorf("agent: %w", runErr)
			}
		case <-time.After(4 * time.Minute):
			if err == nil {
				err = errors.New("the agent did not stop within 4 minutes")
			}
		}
	}()

	res = &volumesResult{Volumes: sixVolumes}
	if err := b.measureSetUp(ctx, res, o.volumes.runs, filepath.Join(dir, "setup")); err != nil {
		return res, err
	}
	if err := b.measureStarts(ctx, res, o.volumes.runs); err != nil {
		return res, err
	}
	if err := b.measurePropagation(ctx, res, o.volumes.updates); err != nil {
		return res, err
	}
	return res, nil
}

// measureSetUp times volumes.Manager.SetUp and TearDown of the six volumes
// of the pod with volumes, runs times each, alone: a manager of its own on
// root, the same object directory, no pod started. It is what the agent's
// first sync of that pod adds before the sandbox is created.
func (b *volumeBench) measureSetUp(ctx context.Context, res *volumesResult, runs int, root string) error {
	objs, err := objects.NewDir(objects.DirOptions{Path: b.objects, Logger: discardLogger})
	if err != nil {
		return err
	}
	m, err := volumes.New(volumes.Options{RootDir: root, Objects: objs, Logger: discardLogger,
		Node: volumes.NodeInfo{Name: nodeName, Allocatable: v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi")}}})
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(volumePod("vol-setup", b.host, true))
	if err != nil {
		return err
	}
	pod, err := podsource.Parse("vol-setup.yaml", data, nodeName)
	if err != nil {
		return err
	}
	var setUp, tearDown []time.Duration
	uid := pod.UID
	for i := range runs + 1 {
		pod.UID = types.UID(fmt.Sprintf("%s-%03d", uid, i))
		t0 := time.Now()
		if _, err := m.SetUp(ctx, pod); err != nil {
			return fmt.Errorf("SetUp alone: %w", err)
		}
		t1 := time.Now()
		if err := m.TearDown(ctx, pod.UID); err != nil {
			return fmt.Errorf("TearDown alone: %w", err)
		}
		t2 := time.Now()
		if i > 0 { // the first: a warm-up
			setUp, tearDown = append(setUp, t1.Sub(t0)), append(tearDown, t2.Sub(t1))
		}
		if mounts, err := leftover.MountsUnder(m.PodDir(pod.UID)); err != nil || len(mounts) > 0 {
			return fmt.Errorf("mounts left under %s after TearDown: %v (%v)", m.PodDir(pod.UID), mounts, err)
		}
	}
	res.SetUp, res.TearDown = stats.Summarize(setUp), stats.Summarize(tearDown)
	fmt.Printf("volumes: SetUp of the six volumes alone p50/p95 %s / %s ms, TearDown %s / %s ms\n",
		ms(res.SetUp.P50), ms(res.SetUp.P95), ms(res.TearDown.P50), ms(res.TearDown.P95))
	return nil
}

// measureStarts starts runs pods with the six volumes and runs without,
// interleaved, after a warm-up pair.
func (b *volumeBench) measureStarts(ctx context.Context, res *volumesResult, runs int) error {
	fmt.Printf("volumes: starting %d pods with %s and %d without, interleaved, after a warm-up pair\n", runs, sixVolumes, runs)
	var with, without, paired, tdWith, tdWithout []time.Duration
	for i := range runs + 1 {
		var pair [2]time.Duration
		for k, vols := range []bool{true, false} {
			name := fmt.Sprintf("vol-%c-%03d", "nw"[btoi(vols)], i)
			if err := sleepCtx(ctx, startGap+mrand.N(startJitter)); err != nil {
				return err
			}
			start, teardown, err := b.startOnce(ctx, name, vols)
			if err != nil {
				return fmt.Errorf("start %d, %s: %w", i, name, err)
			}
			if vols {
				res.ContentChecks++
			}
			pair[k] = start
			if i == 0 {
				continue // the warm-up
			}
			if vols {
				with, tdWith = append(with, start), append(tdWith, teardown)
				res.SamplesWith = append(res.SamplesWith, stats.Millis(start))
			} else {
				without, tdWithout = append(without, start), append(tdWithout, teardown)
				res.SamplesWithout = append(res.SamplesWithout, stats.Millis(start))
			}
		}
		if i > 0 {
			paired = append(paired, pair[0]-pair[1])
		}
		if i == 0 {
			fmt.Printf("volumes: warm-up: with %s ms, without %s ms\n", ms(pair[0]), ms(pair[1]))
		} else if i%10 == 0 || i == runs {
			fmt.Printf("volumes: %d of %d pairs started\n", i, runs)
		}
	}
	if len(with) != runs || len(without) != runs {
		return fmt.Errorf("%d pods with volumes and %d without measured, want %d each", len(with), len(without), runs)
	}
	res.Runs = runs
	res.With, res.Without, res.Paired = stats.Summarize(with), stats.Summarize(without), stats.Summarize(paired)
	res.TeardownWith, res.TeardownWithout = stats.Summarize(tdWith), stats.Summarize(tdWithout)
	p50, p95 := res.overhead()
	res.OverheadP50Ms, res.OverheadP95Ms = stats.Millis(p50), stats.Millis(p95)
	fmt.Printf("volumes: manifest → running p50/p95: with %s / %s ms, without %s / %s ms; overhead %s / %s ms\n",
		ms(res.With.P50), ms(res.With.P95), ms(res.Without.P50), ms(res.Without.P95), ms(p50), ms(p95))
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// startOnce writes the manifest of pod name (with the six volumes or none),
// times the rename → the first Put showing its container running, checks the
// pod, deletes it and waits until it is torn down.
func (b *volumeBench) startOnce(ctx context.Context, name string, vols bool) (start, teardown time.Duration, err error) {
	pod := volumePod(name, b.host, vols)
	data, err := yaml.Marshal(pod)
	if err != nil {
		return 0, 0, err
	}
	full := podName(name)
	ch := b.rec.startedCh(full)
	var t0 time.Time
	if err := writeAtomic(b.pods, name+".yaml", string(data), &t0); err != nil {
		return 0, 0, err
	}
	if err := b.wait(ctx, ch, "its container running"); err != nil {
		return 0, 0, err
	}
	t1, _ := b.rec.startedAt(full)
	start = t1.Sub(t0)

	p := findPod(b.a, full)
	if p == nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
		return 0, 0, fmt.Errorf("the agent does not show the pod running: %+v", p)
	}
	id := criID(p.Status.ContainerStatuses[0].ContainerID)
	volDir := filepath.Join(b.root, "pods", string(p.UID), "volumes")
	if vols {
		if err := b.checkContent(ctx, id, full); err != nil {
			return 0, 0, err
		}
	} else if entries, _ := os.ReadDir(volDir); len(entries) > 0 {
		return 0, 0, fmt.Errorf("the pod without volumes has volume directories in %s", volDir)
	}

	t2 := time.Now()
	if err := os.Remove(filepath.Join(b.pods, name+".yaml")); err != nil {
		return 0, 0, err
	}
	if err := b.waitGone(ctx, full, p.UID); err != nil {
		return 0, 0, err
	}
	return start, time.Since(t2), nil
}

// wait waits for ch, the agent, ctx or volumeTimeout.
func (b *volumeBench) wait(ctx context.Context, ch <-chan struct{}, what string) error {
	select {
	case <-ch:
		return nil
	case <-b.done:
		return errors.New("the agent stopped")
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(volumeTimeout):
		return fmt.Errorf("no status showing %s within %s", what, volumeTimeout)
	}
}

// waitGone waits until pod name is gone from the agent, its sandbox from the
// runtime and its directory from the disk, and checks nothing is left mounted
// there.
func (b *volumeBench) waitGone(ctx context.Context, name string, uid types.UID) error {
	podDir := filepath.Join(b.root, "pods", string(uid))
	sel := &runtime.PodSandboxFilter{LabelSelector: map[string]string{kubetypes.KubernetesPodUIDLabel: string(uid)}}
	var last string
	err := pollUntil(ctx, name+" torn down", volumeTimeout, func() bool {
		if findPod(b.a, name) != nil {
			last = "the agent still has the pod"
			return false
		}
		if sbs, err := b.s.rt.ListPodSandbox(ctx, sel); err != nil || len(sbs) > 0 {
			last = fmt.Sprintf("the runtime still has %d sandboxes of it (%v)", len(sbs), err)
			return false
		}
		if _, err := os.Stat(podDir); err == nil {
			last = podDir + " still exists"
			return false
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w: %s", err, last)
	}
	if m, err := leftover.MountsUnder(podDir); err != nil || len(m) > 0 {
		return fmt.Errorf("mounts left under %s after the teardown: %v (%v)", podDir, m, err)
	}
	return nil
}

// checkContent reads one file of each volume in the container (and the file
// system type of the secret and the Memory emptyDir) through ExecSync.
func (b *volumeBench) checkContent(ctx context.Context, id, podName string) error {
	script := `for f in /cfg/v /sec/password /meta/name /all/v /all/password /all/namespace /host/hello; do echo "$(cat $f)"; done; stat -f -c %T /sec /mem`
	want := strings.Join([]string{"cfg-v1", "s3cret", podName, "cfg-v1", "s3cret", "default", "hello", "tmpfs", "tmpfs"}, "\n")
	cctx, cancel := context.WithTimeout(ctx, volumeTimeout)
	defer cancel()
	stdout, stderr, err := b.s.rt.ExecSync(cctx, id, []string{"sh", "-c", script}, 20*time.Second)
	if err != nil {
		return fmt.Errorf("ExecSync in container %.12s: %w (stderr %q)", id, err, stderr)
	}
	if got := strings.TrimSpace(string(stdout)); got != want {
		return fmt.Errorf("the volumes' content in container %.12s:\n%s\nwant:\n%s\n(stderr %q)", id, got, want, stderr)
	}
	return nil
}

// volumePod is a static pod of one busybox container that exits on SIGTERM
// (so deleting it takes no grace period), with the six volumes mounted or
// none.
func volumePod(name, hostDir string, vols bool) *v1.Pod {
	grace := int64(1)
	c := v1.Container{Name: "main", Image: busybox, ImagePullPolicy: v1.PullNever,
		Command: []string{"sh", "-c", `trap 'exit 0' TERM; sleep 100000 & wait`}}
	p := &v1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []v1.Container{c}}}
	if !vols {
		return p
	}
	cfg := v1.LocalObjectReference{Name: "bench-cfg"}
	sec := v1.LocalObjectReference{Name: "bench-sec"}
	memLimit := resource.MustParse("1Mi")
	dirType := v1.HostPathDirectory
	p.Spec.Volumes = []v1.Volume{
		{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: cfg}}},
		{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: sec.Name}}},
		{Name: "meta", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
		{Name: "all", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: cfg}},
			{Secret: &v1.SecretProjection{LocalObjectReference: sec}},
			{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}},
		{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: &memLimit}}},
		{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir, Type: &dirType}}},
	}
	for _, v := range p.Spec.Volumes {
		p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, v1.VolumeMount{Name: v.Name, MountPath: "/" + v.Name})
	}
	return p
}

// propagationPod is a static pod whose container copies each new value of its
// configMap volume's file v to /host/seen, in a loop of shell builtins (no
// fork) pausing readerPoll between reads (`read -t` on a FIFO it holds
// open: a spinning loop would take one of the node's CPUs from the agent).
func propagationPod(name, hostDir string) *v1.Pod {
	grace := int64(1)
	script := `trap 'exit 0' TERM; mkfifo /tmp/tick; exec 3<>/tmp/tick; last=
while :; do
  read v < /cfg/v
  [ "$v" != "$last" ] && { echo "$v" > /host/seen; last=$v; }
  read -t ` + fmt.Sprintf("%g", readerPoll.Seconds()) + ` x <&3
done`
	dirType := v1.HostPathDirectory
	return &v1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{Name: "reader", Image: busybox, ImagePullPolicy: v1.PullNever, Command: []string{"sh", "-c", script},
				VolumeMounts: []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}, {Name: "host", MountPath: "/host"}}}},
			Volumes: []v1.Volume{
				{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "bench-prop"}}}},
				{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: hostDir, Type: &dirType}}},
			}}}
}

// measurePropagation times n updates of the propagation pod's configMap.
func (b *volumeBench) measurePropagation(ctx context.Context, res *volumesResult, n int) error {
	const name = "vol-prop"
	fmt.Printf("volumes: %d configMap updates to a running pod\n", n)
	data, err := yaml.Marshal(propagationPod(name, b.host))
	if err != nil {
		return err
	}
	full := podName(name)
	ch := b.rec.startedCh(full)
	if err := writeAtomic(b.pods, name+".yaml", string(data), nil); err != nil {
		return err
	}
	if err := b.wait(ctx, ch, "the reader running"); err != nil {
		return err
	}
	p := findPod(b.a, full)
	if p == nil {
		return errors.New("the reader pod is not in the agent")
	}
	volFile := filepath.Join(b.root, "pods", string(p.UID), "volumes", "kubernetes.io~configmap", "cfg", "v")
	seenFile := filepath.Join(b.host, "seen")
	read := func(f string) string {
		data, _ := os.ReadFile(f)
		return strings.TrimSpace(string(data))
	}
	if err := pollUntil(ctx, "the reader to copy p-000", volumeTimeout, func() bool { return read(seenFile) == "p-000" }); err != nil {
		return err
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer watcher.Close()
	for _, d := range []string{b.host, filepath.Dir(volFile)} {
		if err := watcher.Add(d); err != nil {
			return fmt.Errorf("inotify %s: %w", d, err)
		}
	}

	var toFile, toContainer []time.Duration
	for i := 1; i <= n; i++ {
		if err := sleepCtx(ctx, updateGap+mrand.N(updateJitter)); err != nil {
			return err
		}
		value := fmt.Sprintf("p-%03d", i)
		var t0, fileAt, seenAt time.Time
		// Whatever is still queued belongs to the previous update.
		for drained := false; !drained; {
			select {
			case <-watcher.Events:
			default:
				drained = true
			}
		}
		check := func() {
			if fileAt.IsZero() && read(volFile) == value {
				fileAt = time.Now()
			}
			if seenAt.IsZero() && read(seenFile) == value {
				seenAt = time.Now()
			}
		}
		if err := writeAtomic(b.objects, "prop.yaml", propObject(value), &t0); err != nil {
			return err
		}
		deadline := time.After(volumeTimeout)
		backstop := time.NewTicker(100 * time.Millisecond)
		for fileAt.IsZero() || seenAt.IsZero() {
			select {
			case <-watcher.Events:
				check()
			case err := <-watcher.Errors:
				backstop.Stop()
				return fmt.Errorf("inotify: %w", err)
			case <-backstop.C:
				// inotify must have reported both changes: a value found by
				// this poll would be timed up to 100 ms late.
				hadFile, hadSeen := !fileAt.IsZero(), !seenAt.IsZero()
				if check(); hadFile != !fileAt.IsZero() || hadSeen != !seenAt.IsZero() {
					backstop.Stop()
					return fmt.Errorf("update %d: %s seen by the 100 ms backstop poll, not through inotify (volume file %q, container's copy %q)",
						i, value, read(volFile), read(seenFile))
				}
			case <-deadline:
				backstop.Stop()
				return fmt.Errorf("update %d: %s not seen within %s (volume file %q, container's copy %q)", i, value, volumeTimeout, read(volFile), read(seenFile))
			case <-ctx.Done():
				backstop.Stop()
				return ctx.Err()
			}
		}
		backstop.Stop()
		toFile, toContainer = append(toFile, fileAt.Sub(t0)), append(toContainer, seenAt.Sub(t0))
		res.SamplesContainer = append(res.SamplesContainer, stats.Millis(seenAt.Sub(t0)))
	}
	if len(toContainer) != n {
		return fmt.Errorf("%d of %d updates measured", len(toContainer), n)
	}
	res.Updates = n
	res.ToVolumeFile, res.ToContainer = stats.Summarize(toFile), stats.Summarize(toContainer)
	res.ReaderPollMs = stats.Millis(readerPoll)
	fmt.Printf("volumes: update → volume file p50/p95 %s / %s ms, → container %s / %s ms\n",
		ms(res.ToVolumeFile.P50), ms(res.ToVolumeFile.P95), ms(res.ToContainer.P50), ms(res.ToContainer.P95))

	if err := os.Remove(filepath.Join(b.pods, name+".yaml")); err != nil {
		return err
	}
	return b.waitGone(ctx, full, p.UID)
}

// writeAtomic writes content to dir/.<name>.tmp, then renames it to dir/name;
// when at is not nil it is set to the time just before the rename.
func writeAtomic(dir, name, content string, at *time.Time) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	if at != nil {
		*at = time.Now()
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

func reportVolumes(w io.Writer, v *volumesResult) {
	if v == nil || v.With.N == 0 {
		return
	}
	fmt.Fprintf(w, "\n### (e) Manifest → container running (first status Put), six volumes against none (ms)\n\n")
	rows := [][]string{{"pod", "runs", "p50", "p95", "min", "max", "delete → torn down p50 / p95"}}
	for _, r := range []struct {
		name    string
		s, down stats.Summary
	}{{"no volumes", v.Without, v.TeardownWithout}, {"six volumes (" + v.Volumes + ")", v.With, v.TeardownWith}} {
		rows = append(rows, []string{r.name, fmt.Sprint(r.s.N), ms(r.s.P50), ms(r.s.P95), ms(r.s.Min), ms(r.s.Max),
			ms(r.down.P50) + " / " + ms(r.down.P95)})
	}
	p50, p95 := v.overhead()
	rows = append(rows, []string{"**overhead** (six volumes − none; target ≤ 10 ms)", "", "**" + ms(p50) + "**", "**" + ms(p95) + "**", "", "", ""})
	mdtable.Write(w, rows)
	fmt.Fprintf(w, "\nInterleaved (with, without, ...) after a warm-up pair; each run minus the one after it: p50 %s, p95 %s ms. "+
		"The volumes' content checked through ExecSync in all %d pods with volumes. "+
		"volumes.Manager SetUp of the six alone p50 %s, p95 %s ms; TearDown p50 %s, p95 %s ms. "+
		"The upstream kubelet adds about 280 ms to a pod with one hostPath volume (one volume-manager poll; the issue's figure).\n",
		ms(v.Paired.P50), ms(v.Paired.P95), v.ContentChecks, ms(v.SetUp.P50), ms(v.SetUp.P95), ms(v.TearDown.P50), ms(v.TearDown.P95))
	if v.ToContainer.N == 0 {
		return
	}
	fmt.Fprintf(w, "\n### (e) ConfigMap update → new content visible (%d updates, ms)\n\n", v.Updates)
	rows = [][]string{{"object file renamed →", "p50", "p95", "min", "max"},
		{"the volume's file on the host", ms(v.ToVolumeFile.P50), ms(v.ToVolumeFile.P95), ms(v.ToVolumeFile.Min), ms(v.ToVolumeFile.Max)},
		{fmt.Sprintf("the container (reads every %g ms)", v.ReaderPollMs), ms(v.ToContainer.P50), ms(v.ToContainer.P95), ms(v.ToContainer.Min), ms(v.ToContainer.Max)}}
	mdtable.Write(w, rows)
	fmt.Fprintln(w, "\nThe kubelet: up to its sync period plus the cache TTL, about a minute (the issue's figure).")
}
