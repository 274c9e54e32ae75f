package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	kubetypes "k8s.io/kubelet/pkg/types"
	"k8s.io/utils/clock"

	"github.com/nodekit-dev/nodekit/agent/clientcert"
	"github.com/nodekit-dev/nodekit/agent/nodestatus"
	"github.com/nodekit-dev/nodekit/agent/podruntime"
	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/agent/qos"
	"github.com/nodekit-dev/nodekit/agent/server"
	"github.com/nodekit-dev/nodekit/agent/stats"
	"github.com/nodekit-dev/nodekit/agent/status"
	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/eviction"
	"github.com/nodekit-dev/nodekit/imagegc"
	"github.com/nodekit-dev/nodekit/objects"
	"github.com/nodekit-dev/nodekit/pleg"
	"github.com/nodekit-dev/nodekit/probes"
	"github.com/nodekit-dev/nodekit/volumes"
)

// Options configures an Agent.
type Options struct {
	// Config is the agent's configuration (LoadConfig or Flags.Load).
	Config *Config
	// Runtime and Images are the CRI services the agent drives. Leave both nil
	// to have New dial Config.RuntimeEndpoint (the kubelet's
	// --container-runtime-endpoint); giving them with an endpoint is an error.
	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService
	// Logger receives the agent's logs (default slog.Default()).
	Logger *slog.Logger
	// Registry receives the agent's metrics and is served on /metrics (default:
	// a new registry).
	Registry *prometheus.Registry
	// Clock drives timers (default the real clock).
	Clock clock.WithTicker
	// DisableEventedPLEG makes the agent relist the runtime every second instead
	// of following its container events.
	DisableEventedPLEG bool
	// StopPodsOnExit terminates every pod gracefully when Run returns, as a node
	// shutdown does. The kubelet's default (false) leaves them running for the
	// next start to adopt.
	StopPodsOnExit bool
	// DisableServer turns the HTTP API off (for embedding and tests).
	DisableServer bool
	// StatusSink receives every new version of each pod's status (default: an
	// in-memory sink). The API server will be one.
	StatusSink status.Sink
	// Sources are pod sources besides the manifest directory of the config
	// (staticPodPath), for example a podsource.Pods fed from code. The agent runs
	// the union of their pods; a pod whose UID two sources give is run once, from
	// the first source.
	Sources []podsource.Source
	// Objects gives the configMaps and secrets pods reference (env, volumes
	// and spec.imagePullSecrets, whose registry credentials go with the
	// pulls of the pod's images), besides or instead of
	// Config.ObjectManifestPath, whose directory is used when this is nil. In
	// cluster mode the API server's are looked up after these. An embedder
	// with pods from code passes its registry credentials as
	// kubernetes.io/dockerconfigjson secrets here (objects.Static) and names
	// them in the pods' spec.imagePullSecrets.
	Objects objects.Source
	// KubeClient joins the agent to an API server as a node (instead of
	// Config.Kubeconfig): the node registered and its status and lease kept,
	// the pods bound to it run beside the other sources', their statuses
	// written back.
	KubeClient kubernetes.Interface
}

// Agent is the node agent.
type Agent struct {
	opts    Options
	cfg     *Config
	rt      internalapi.RuntimeService // opts.Runtime, counted and timed
	log     *slog.Logger
	clock   clock.WithTicker
	rtName  string
	hostIPs []string
	// closeRuntime closes the connections New dialed to Config.RuntimeEndpoint
	// (a no-op for a runtime given in Options); Run calls it when it returns.
	closeRuntime func()

	cache pleg.Cache
	pleg  pleg.PLEG
	// timeline records, per pod, what happened and why (agent/timeline).
	timeline *timeline.Recorder
	probes   probes.Manager
	status   status.Manager
	pods     *podruntime.Manager
	cgroups  qos.Manager // nil without cgroupsPerQOS
	// The node's self-protection: eviction, image and container GC.
	evictor     *eviction.Manager
	imageGC     *imagegc.ImageGC
	containerGC *imagegc.ContainerGC
	evictMu     sync.Mutex
	evicted     map[types.UID]*evicted
	started     time.Time // when New ran: the node's creation and Ready time
	// qosMilli and qosUpdated: the burstable pods' CPU requests and the time at
	// the last tier update (housekeeping's goroutine only).
	qosMilli   int64
	qosUpdated time.Time
	node0      nodeResources
	sources    []podsource.Source // the manifest directory first, then Options.Sources
	workers    *podWorkers
	server     *server.Server
	node       *stats.Node
	metrics    *metrics
	// objects is where configMaps and secrets come from (nil: nowhere);
	// objectDir, when the config names a directory, runs with the agent.
	objects   objects.Source
	objectDir *objects.Dir
	objectAPI *objects.API
	volumes   *volumes.Manager
	// Cluster mode: the node's registration, status and lease; the client
	// that finishes graceful deletions.
	nodeStatus *nodestatus.Manager
	kube       kubernetes.Interface
	apiSource  *podsource.API
	nodeUID    types.UID // the Node's, once read (housekeeping's goroutine)
	// diverged are pods whose status in the API differed from the agent's at
	// the last housekeeping (housekeeping's goroutine).
	diverged map[types.UID]struct{}
	// events delivers what recorder records (events.go).
	events   record.EventBroadcaster
	recorder record.EventRecorder

	// creds is the node's client certificate (nil: Options.KubeClient, or
	// standalone); what talks to the API server waits for it.
	creds *clientcert.Manager

	mu      sync.RWMutex
	desired map[types.UID]*v1.Pod
	// deleting are the API's pods with a deletionTimestamp, not desired any
	// more: once stopped and cleaned up, their deletion is finished.
	deleting     []*v1.Pod
	sourcesReady atomic.Bool
	sourceErrors []error
}

// New builds an Agent. It asks the runtime for its name and version, so the
// runtime must answer. The runtime is Options.Runtime and Options.Images, or,
// when both are nil, the CRI endpoint Config.RuntimeEndpoint, dialed here
// (unix:///path or a socket path; each connection waits up to the config's
// runtimeRequestTimeout for the runtime) and closed when Run returns.
func New(o Options) (_ *Agent, err error) {
	if o.Config == nil {
		return nil, errors.New("agent: no config")
	}
	var closeRuntime func()
	switch ep := o.Config.RuntimeEndpoint; {
	case ep != "" && (o.Runtime != nil || o.Images != nil):
		return nil, fmt.Errorf("agent: Config.RuntimeEndpoint %q and Options.Runtime/Images both given: pass one", ep)
	case ep != "":
		ctx, cancel := context.WithCancel(context.Background())
		o.Runtime, o.Images, closeRuntime, err = dialRuntime(ctx, ep, o.Config.Kubelet.RuntimeRequestTimeout.Duration)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		defer func() {
			if err != nil {
				closeRuntime()
			}
		}()
	case o.Runtime == nil || o.Images == nil:
		return nil, errors.New("agent: no CRI runtime or image service (Options.Runtime and Images, or Config.RuntimeEndpoint)")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	a := &Agent{opts: o, cfg: o.Config, log: o.Logger, clock: o.Clock, closeRuntime: closeRuntime, desired: map[types.UID]*v1.Pod{}, diverged: map[types.UID]struct{}{}, evicted: map[types.UID]*evicted{}, started: o.Clock.Now()}
	if a.closeRuntime == nil {
		a.closeRuntime = func() {}
	}
	k := &a.cfg.Kubelet

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := o.Runtime.Version(ctx, "v1")
	if err != nil {
		return nil, fmt.Errorf("agent: the container runtime does not answer: %w", err)
	}
	a.rtName = v.GetRuntimeName()
	a.hostIPs = nodeIPs(a.cfg.NodeIP)
	a.log.Info("container runtime", "name", v.GetRuntimeName(), "version", v.GetRuntimeVersion(), "api", v.GetRuntimeApiVersion())

	a.metrics = newMetrics(o.Registry)
	a.newEvents()
	a.rt = a.instrumented(o.Runtime)
	a.cache = pleg.NewCache()
	a.pleg = pleg.New(pleg.Options{
		Runtime:        a.rt,
		Cache:          a.cache,
		Clock:          a.clock,
		Logger:         a.log.With("component", "pleg"),
		Metrics:        a.metrics.pleg(),
		DisableEvented: o.DisableEventedPLEG,
	})
	var sink status.Sink = &status.MemorySink{}
	if o.StatusSink != nil {
		sink = o.StatusSink
	}
	client := o.KubeClient
	if client == nil && a.cfg.Kubeconfig != "" {
		// The node's client certificate: the kubeconfig's, or one requested
		// with the bootstrap kubeconfig once Run starts (the client made
		// now presents it), renewed with rotateCertificates.
		a.creds, err = clientcert.New(clientcert.Options{
			Kubeconfig:          a.cfg.Kubeconfig,
			BootstrapKubeconfig: a.cfg.BootstrapKubeconfig,
			CertDir:             a.certDir(),
			NodeName:            a.cfg.NodeName,
			Rotate:              k.RotateCertificates,
			Logger:              a.log.With("component", "clientcert"),
		})
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		rc := a.creds.Config()
		rc.UserAgent = "nodekit-kubelet/" + Version + " (" + a.cfg.NodeName + ")"
		// The kubelet's client limits (kubeAPIQPS, kubeAPIBurst), not
		// client-go's 5 and 10: a node with 100 pods writes their statuses.
		rc.QPS, rc.Burst = float32(*k.KubeAPIQPS), int(k.KubeAPIBurst)
		if client, err = kubernetes.NewForConfig(rc); err != nil {
			return nil, fmt.Errorf("agent: --kubeconfig %s: %w", a.cfg.Kubeconfig, err)
		}
	}
	var apiSource *podsource.API
	a.kube = client
	if client != nil {
		apiSource, err = podsource.NewAPI(podsource.APIOptions{Client: client, NodeName: a.cfg.NodeName, Logger: a.log.With("component", "apisource")})
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.apiSource = apiSource
		if o.StatusSink == nil {
			sink, err = status.NewAPISink(status.APISinkOptions{
				Client: client,
				Target: a.statusTarget,
				Logger: a.log.With("component", "apistatus"),
			})
			if err != nil {
				return nil, fmt.Errorf("agent: %w", err)
			}
		}
		a.nodeStatus, err = nodestatus.New(nodestatus.Options{
			Client:          client,
			NodeName:        a.cfg.NodeName,
			Node:            a.Node,
			Labels:          a.cfg.NodeLabels,
			Taints:          k.RegisterWithTaints,
			UpdateFrequency: k.NodeStatusUpdateFrequency.Duration,
			ReportFrequency: k.NodeStatusReportFrequency.Duration,
			LeaseDuration:   time.Duration(k.NodeLeaseDurationSeconds) * time.Second,
			Recorder:        a.recorder,
			Clock:           a.clock,
			Logger:          a.log.With("component", "nodestatus"),
		})
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	a.timeline = timeline.New(timeline.Options{Clock: a.clock})
	a.status = status.NewManager(sink, a.clock, a.log.With("component", "status"), status.WithChanges(a.timeline.StatusChanged))
	a.probes, err = probes.New(probes.Options{
		Exec:     a.rt,
		Status:   a.status,
		Clock:    a.clock,
		Logger:   a.log.With("component", "probes"),
		Metrics:  a.metrics.probes(),
		Recorder: a.recorder,
		Journal:  timelineJournal{a.timeline},
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := os.MkdirAll(a.cfg.RootDir, 0o711); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	evictionCfg, err := eviction.ParseConfig(k)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	nodeOpts := stats.NodeOptions{NodeName: a.cfg.NodeName, FsPath: a.cfg.RootDir, Clock: a.clock}
	if *k.CgroupsPerQOS {
		// The pods' cgroup gives allocatableMemory.available.
		nodeOpts.SystemContainers = map[string]string{statsapi.SystemContainerPods: qos.KubepodsPath(k.CgroupDriver, k.CgroupRoot)}
	}
	a.node = stats.NewNode(nodeOpts)
	machine, err := machineResources(a.node)
	if err != nil {
		return nil, fmt.Errorf("agent: node capacity: %w", err)
	}
	a.node0, err = computeNodeResources(k, machine, hardEvictionReservation(evictionCfg, machine))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.objects = o.Objects
	if a.objects == nil && a.cfg.ObjectManifestPath != "" {
		a.objectDir, err = objects.NewDir(objects.DirOptions{
			Path:   a.cfg.ObjectManifestPath,
			Period: k.FileCheckFrequency.Duration,
			Logger: a.log.With("component", "objects"),
		})
		if err != nil {
			return nil, fmt.Errorf("agent: --object-manifest-path: %w", err)
		}
		a.objects = a.objectDir
	}
	if o.Objects == nil && client != nil {
		// Cluster mode: the API server's objects, after the directory's.
		a.objectAPI, err = objects.NewAPI(objects.APIOptions{Client: client, Logger: a.log.With("component", "apiobjects")})
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		if a.objects != nil {
			a.objects = objects.First(a.objects, a.objectAPI)
		} else {
			a.objects = a.objectAPI
		}
	}
	a.volumes, err = volumes.New(volumes.Options{
		RootDir:      a.cfg.RootDir,
		Objects:      a.objects,
		Node:         volumes.NodeInfo{Name: a.cfg.NodeName, Allocatable: a.node0.allocatable},
		ResyncPeriod: k.SyncFrequency.Duration,
		Logger:       a.log.With("component", "volumes"),
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	var podCgroups podruntime.PodCgroups
	if *k.CgroupsPerQOS {
		a.cgroups, err = qos.New(qos.Options{
			Driver: k.CgroupDriver,
			Root:   k.CgroupRoot,
			Pod: qos.PodOptions{
				CPUCFSQuota:       *k.CPUCFSQuota,
				CPUCFSQuotaPeriod: k.CPUCFSQuotaPeriod.Duration,
				PodPidsLimit:      *k.PodPidsLimit,
			},
			NodeAllocatable: a.node0.enforced,
			Logger:          a.log.With("component", "cgroups"),
		})
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		podCgroups = a.cgroups
	}
	a.pods, err = podruntime.New(podruntime.Options{
		Runtime:         changeTracker{a.rt},
		Images:          o.Images,
		RuntimeName:     a.rtName,
		RootDir:         a.cfg.RootDir,
		PodLogsDir:      k.PodLogsDir,
		CgroupDriver:    k.CgroupDriver,
		CgroupRoot:      k.CgroupRoot,
		PodCgroups:      podCgroups,
		DisableCPUQuota: !*k.CPUCFSQuota,
		CPUQuotaPeriod:  k.CPUCFSQuotaPeriod.Duration,
		MemoryCapacity:  a.node0.capacity.Memory().Value(),
		NodeAllocatable: a.node0.allocatable,
		NodeName:        a.cfg.NodeName,
		HostIPs:         a.hostIPs,
		ClusterDNS:      k.ClusterDNS,
		ClusterDomain:   k.ClusterDomain,
		Volumes:         a.volumes,
		Objects:         a.objects,
		Probes: func(kind podruntime.ProbeKind, containerID string) podruntime.ProbeResult {
			t := probes.Liveness
			if kind == podruntime.StartupProbe {
				t = probes.Startup
			}
			r, _ := a.probes.Get(t, containerID)
			return podruntime.ProbeResult(r)
		},
		Recorder: a.recorder,
		Timeline: a.timeline,
		Clock:    a.clock,
		Logger:   a.log.With("component", "podruntime"),
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if k.StaticPodPath != "" {
		dir, err := podsource.NewManifestDir(podsource.Options{
			Dir:      k.StaticPodPath,
			NodeName: a.cfg.NodeName,
			Period:   k.FileCheckFrequency.Duration,
			Clock:    a.clock,
			Logger:   a.log.With("component", "manifests"),
		})
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.sources = append(a.sources, dir)
	}
	a.sources = append(a.sources, o.Sources...)
	if apiSource != nil {
		a.sources = append(a.sources, sourceAfterCredentials{apiSource, a})
	}
	a.workers = newPodWorkers(a, a.clock, k.SyncFrequency.Duration, a.log.With("component", "podworkers"))
	a.workers.onSync = a.metrics.observeSync
	if err := a.newResourceManagers(evictionCfg); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if !o.DisableServer {
		if err := a.newServer(); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	return a, nil
}

// Run runs the agent until ctx ends. It closes the runtime connections New
// dialed; an Agent runs once.
func (a *Agent) Run(ctx context.Context) error {
	defer a.closeRuntime()
	stopEvents := a.startEvents(a.kube)
	defer stopEvents()
	if a.cgroups != nil {
		// As the kubelet: the QoS hierarchy exists before any pod runs.
		if err := a.cgroups.Start(); err != nil {
			return fmt.Errorf("pod cgroups: %w", err)
		}
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	a.status.Start()
	defer a.status.Stop()
	a.pleg.Start()
	defer a.pleg.Stop()
	a.probes.Start()
	defer a.probes.Stop()

	var bg sync.WaitGroup
	serverErr := make(chan error, 1)
	if a.server != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			serverErr <- a.server.Run(ctx)
		}()
	}
	// Every source's updates reach the loop through one channel, tagged with the
	// source's index.
	updates := make(chan sourceUpdate)
	for i, src := range a.sources {
		bg.Add(2)
		go func() {
			defer bg.Done()
			src.Run(ctx)
		}()
		go func() {
			defer bg.Done()
			for u := range src.Updates() {
				select {
				case updates <- sourceUpdate{i, u}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if len(a.sources) == 0 {
		a.sourcesReady.Store(true)
	}
	// The node's self-protection, and the volumes following their objects,
	// run until the agent stops.
	background := []func(context.Context){a.evictor.Run, a.imageGC.Run, a.containerGC.Run, a.volumes.Run}
	if a.objectDir != nil {
		background = append(background, a.objectDir.Run)
	}
	if a.nodeStatus != nil {
		background = append(background, a.afterCredentials(a.nodeStatus.Run))
	}
	if a.creds != nil {
		select {
		case <-a.creds.Ready():
		default:
			a.log.Info("cluster mode waits for the node's client certificate (component clientcert) before it registers the node and watches its pods; static pods run meanwhile")
		}
		background = append(background, func(ctx context.Context) {
			if err := a.creds.Run(ctx); err != nil {
				a.log.Error("the node's client certificate cannot be kept: the agent stays off the API server", "err", err)
			}
		})
	}
	if a.objectAPI != nil {
		background = append(background, a.objectAPI.Run)
	}
	for _, run := range background {
		bg.Add(1)
		go func() {
			defer bg.Done()
			run(ctx)
		}()
	}
	sets := make([][]*v1.Pod, len(a.sources))
	synced := make([]bool, len(a.sources))
	sourceErrs := make([][]error, len(a.sources))
	housekeeping := a.clock.NewTicker(2 * time.Second)
	defer housekeeping.Stop()
	a.log.Info("agent running", "node", a.cfg.NodeName, "manifests", a.cfg.Kubelet.StaticPodPath, "evented-pleg", !a.opts.DisableEventedPLEG)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serverErr:
			if err == nil {
				// The server ended because ctx did: ctx.Done is next.
				serverErr = nil
				continue
			}
			runErr = fmt.Errorf("kubelet API: %w", err)
			break loop
		case u := <-updates:
			sets[u.source], synced[u.source], sourceErrs[u.source] = u.Pods, true, u.Errors
			a.applySourceUpdate(workCtx, a.mergeSources(sets, sourceErrs), !slices.Contains(synced, false))
		case ev := <-a.pleg.Watch():
			if ev.Type != pleg.ContainerChanged {
				rs, _ := a.cache.Get(ev.ID)
				recordPLEG(a.timeline, ev, rs)
				a.workers.kick(ev.ID)
			}
		case u := <-a.probes.Liveness():
			if u.Result == probes.Failure {
				a.log.Info("liveness probe failed; the container will be restarted", "pod", u.PodUID, "container", u.ContainerName)
				a.workers.kick(u.PodUID)
			}
		case u := <-a.probes.Readiness():
			a.status.SetContainerReadiness(u.PodUID, u.ContainerID, u.Result == probes.Success)
		case u := <-a.probes.Startup():
			a.status.SetContainerStartup(u.PodUID, u.ContainerID, u.Result == probes.Success)
			a.workers.kick(u.PodUID)
		case <-housekeeping.C():
			a.housekeeping(workCtx)
		}
	}
	if a.opts.StopPodsOnExit {
		a.stopAllPods(workCtx)
	}
	stopWork()
	a.workers.wait()
	bg.Wait()
	return runErr
}

// sourceUpdate is an update of the source a.sources[source].
type sourceUpdate struct {
	source int
	podsource.Update
}

// mergeSources is the union of every source's latest set: a UID given by two
// sources is taken from the first.
func (a *Agent) mergeSources(sets [][]*v1.Pod, errs [][]error) podsource.Update {
	var out podsource.Update
	seen := map[types.UID]int{}
	for i, set := range sets {
		for _, p := range set {
			if j, dup := seen[p.UID]; dup {
				if j != i {
					a.log.Warn("two pod sources give the same pod; the first one's is run", "pod", podRef(p), "uid", p.UID,
						"kept", a.sources[j].Name(), "ignored", a.sources[i].Name())
				}
				continue
			}
			seen[p.UID] = i
			out.Pods = append(out.Pods, p)
		}
		out.Errors = append(out.Errors, errs[i]...)
	}
	return out
}

// applySourceUpdate makes the desired set the update's pods; allSynced says
// every source has sent its first set.
func (a *Agent) applySourceUpdate(ctx context.Context, u podsource.Update, allSynced bool) {
	for _, err := range u.Errors {
		a.log.Warn("pod manifest rejected", "err", err)
	}
	next := make(map[types.UID]*v1.Pod, len(u.Pods))
	var deleting []*v1.Pod
	for _, p := range u.Pods {
		if p.DeletionTimestamp != nil {
			// Deleted in the API: it stops (with the deletion's grace period)
			// and the agent finishes the delete once it is gone.
			deleting = append(deleting, p)
			continue
		}
		if p.CreationTimestamp.IsZero() {
			// A static pod is created when the agent first sees its manifest.
			seen, err := time.Parse(time.RFC3339Nano, p.Annotations[podsource.AnnotationSeen])
			if err != nil {
				seen = a.clock.Now()
			}
			p.CreationTimestamp = metav1.NewTime(seen)
		}
		next[p.UID] = p
	}
	a.mu.Lock()
	prev, prevDeleting := a.desired, a.deleting
	a.desired = next
	a.sourceErrors = u.Errors
	a.mu.Unlock()
	for uid, p := range next {
		recordSourceChange(a.timeline, prev[uid], p)
		if _, ok := prev[uid]; !ok {
			a.log.Info("pod added", "pod", podRef(p), "uid", uid)
			if !a.workers.known(uid) {
				a.admit(p)
			}
		}
		a.workers.update(ctx, p)
	}
	for _, p := range deleting {
		recordDeletion(a.timeline, prev[p.UID], prevDeleting, p)
		a.workers.setPod(p) // the deletion's grace period
	}
	a.mu.Lock()
	a.deleting = deleting
	a.mu.Unlock()
	for uid, p := range prev {
		if _, ok := next[uid]; !ok {
			a.log.Info("pod removed", "pod", podRef(p), "uid", uid)
			recordSourceRemoved(a.timeline, p)
			a.workers.remove(uid)
		}
	}
	if allSynced {
		a.sourcesReady.Store(true)
	}
	a.metrics.desiredPods.Set(float64(len(next)))
}

// syncPod is one pod worker sync (podSyncer).
func (a *Agent) syncPod(ctx context.Context, pod *v1.Pod, minTime time.Time) (res syncResult) {
	ctx = timeline.WithPod(ctx, a.timeline, pod.UID) // the sync's CRI calls
	rs, err := a.podRuntimeStatus(ctx, pod.UID, minTime)
	if err != nil {
		return syncResult{err: fmt.Errorf("pod %s: %w", podRef(pod), err)}
	}
	if e := a.evictedPod(pod.UID); e != nil {
		// Evicted, or refused at admission: it stops and never runs again.
		a.status.SetPodStatus(pod, withEviction(a.generateStatus(pod, rs, false), e))
		return syncResult{terminal: true}
	}
	api := a.generateStatus(pod, rs, false)
	a.status.SetPodStatus(pod, api)
	if api.Phase == v1.PodSucceeded || api.Phase == v1.PodFailed {
		return syncResult{terminal: true}
	}
	a.probes.AddPod(pod)
	ctx, changed := trackChanges(ctx)
	pullSecrets, missing := a.pullSecrets(ctx, pod)
	r := a.pods.SyncPod(ctx, pod, rs, pullSecrets)
	res = syncResult{retry: r.RetryAfter, changed: changed.Load(), err: r.Err}
	if len(missing) > 0 && errors.Is(r.Err, podruntime.ErrImagePull) {
		// As the kubelet: only when a pull failed, since the secrets may not
		// be needed at all.
		a.recorder.Eventf(podruntime.PodReference(pod), v1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", "))
	}
	if r.Err != nil {
		// The sync's waiting reasons (CrashLoopBackOff, ErrImagePull...) belong
		// in the status now, not at the next sync.
		a.status.SetPodStatus(pod, a.generateStatus(pod, rs, false))
		return res
	}
	// Exited containers are the container GC's (imagegc, every minute).
	a.pods.ForgetBackOffs()
	return res
}

// pullSecrets reads the pod's spec.imagePullSecrets from the agent's secret
// source, as the kubelet's getPullSecretsForPod: a secret that cannot be read
// is logged, skipped (the pull may not need it) and returned in missing.
func (a *Agent) pullSecrets(ctx context.Context, pod *v1.Pod) (secrets []v1.Secret, missing []string) {
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue // the API allowed empty names once; they mean nothing
		}
		var s *v1.Secret
		err := errors.New("no secret source (Options.Objects, Config.ObjectManifestPath or cluster mode)")
		if a.objects != nil {
			s, err = a.objects.Secret(ctx, pod.Namespace, ref.Name)
		}
		if err != nil {
			a.log.Info("unable to retrieve pull secret, the image pull may not succeed", "pod", podRef(pod), "secret", pod.Namespace+"/"+ref.Name, "err", err)
			missing = append(missing, ref.Name)
			continue
		}
		secrets = append(secrets, *s)
	}
	return secrets, missing
}

func (a *Agent) generateStatus(pod *v1.Pod, rs *pleg.PodStatus, terminal bool) v1.PodStatus {
	old, _ := a.status.GetPodStatus(pod.UID)
	return status.Generate(pod, rs, old, status.GenerateOptions{
		RuntimeName:        a.rtName,
		Now:                a.clock.Now(),
		HostIPs:            a.hostIPs,
		PodIsTerminal:      terminal,
		WaitingReason:      a.pods.WaitingReason,
		ProbeStatus:        a.probes.UpdatePodStatus,
		TerminationMessage: a.pods.TerminationMessage,
	})
}

// terminatePod stops the pod's containers and sandbox, gracefully, then tears
// down its volumes (podSyncer).
func (a *Agent) terminatePod(ctx context.Context, pod *v1.Pod, minTime time.Time) error {
	ctx = timeline.WithPod(ctx, a.timeline, pod.UID)
	a.probes.StopLivenessAndStartup(pod)
	rs, err := a.podRuntimeStatus(ctx, pod.UID, minTime)
	if err != nil {
		return fmt.Errorf("pod %s: %w", podRef(pod), err)
	}
	e := a.evictedPod(pod.UID)
	a.timeline.Record(pod.UID, timeline.Entry{Kind: timeline.Sync, What: "terminate pod", Reason: a.terminationReason(pod, e)})
	var grace *int64
	if e != nil {
		grace = e.grace
	}
	if err := a.pods.KillPod(ctx, pod, rs, grace); err != nil {
		return err
	}
	// As the kubelet: a pod that will not run again gives its volumes back
	// now (tmpfs memory, emptyDir space), not when it is deleted.
	if err := a.volumes.TearDown(ctx, pod.UID); err != nil {
		return fmt.Errorf("pod %s: %w", podRef(pod), err)
	}
	// The pod's final status: read after the kill.
	if rs, err = a.inspectPod(ctx, pod.UID); err == nil {
		st := a.generateStatus(pod, rs, true)
		if e != nil {
			st = withEviction(st, e)
		}
		a.status.SetPodStatus(pod, st)
	}
	if e != nil {
		e.finish()
	}
	a.log.Info("pod stopped", "pod", podRef(pod))
	return nil
}

// terminationReason says why a pod worker stops its pod.
func (a *Agent) terminationReason(pod *v1.Pod, e *evicted) string {
	switch {
	case e != nil:
		return "evicted or refused at admission"
	case pod.DeletionTimestamp != nil:
		return "deleted in the API server"
	}
	a.mu.RLock()
	_, desired := a.desired[pod.UID]
	a.mu.RUnlock()
	if !desired {
		return "removed from its source"
	}
	if st, ok := a.status.GetPodStatus(pod.UID); ok {
		return "reached phase " + string(st.Phase)
	}
	return "reached a terminal phase"
}

// cleanupPod removes a pod that left the desired set (podSyncer).
func (a *Agent) cleanupPod(ctx context.Context, pod *v1.Pod) error {
	a.probes.RemovePod(pod)
	if err := a.pods.RemovePod(ctx, pod.UID); err != nil {
		return err
	}
	a.forgetEvicted(pod.UID)
	a.cache.Delete(pod.UID)
	a.timeline.Forget(pod.UID) // kept a while for describe
	if pod.DeletionTimestamp != nil {
		if err := a.finishDelete(ctx, pod); err != nil {
			return err
		}
	}
	a.mu.RLock()
	keep := make(map[types.UID]bool, len(a.desired))
	for uid := range a.desired {
		keep[uid] = true
	}
	a.mu.RUnlock()
	a.status.RemoveOrphanedStatuses(keep)
	a.log.Info("pod removed from the node", "pod", podRef(pod))
	return nil
}

// statusTarget names the API object a pod's status goes to: an API pod itself,
// a static pod's mirror pod (an error until it exists: the write is retried).
func (a *Agent) statusTarget(p *v1.Pod) (types.UID, bool, error) {
	if a.apiSource == nil {
		return "", false, nil
	}
	if a.apiSource.Get(p.UID) != nil {
		return p.UID, true, nil
	}
	if p.Annotations[podsource.AnnotationSource] != podsource.SourceFile {
		return "", false, nil
	}
	for _, m := range a.apiSource.Mirrors() {
		if m.Namespace == p.Namespace && m.Name == p.Name && m.Annotations[podsource.AnnotationMirror] == string(p.UID) && m.DeletionTimestamp == nil {
			return m.UID, true, nil
		}
	}
	return "", false, fmt.Errorf("static pod %s has no mirror pod yet", podRef(p))
}

// mirrorHousekeeping keeps a mirror pod in the API for each static pod, as the
// kubelet: created when missing (owned by the Node, its config hash in
// kubernetes.io/config.mirror), replaced when its static pod changed, deleted
// when its static pod is gone.
func (a *Agent) mirrorHousekeeping(ctx context.Context) {
	if a.apiSource == nil || !a.apiSource.Synced() {
		return
	}
	if a.nodeUID == "" {
		n, err := a.kube.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return // not registered yet
		}
		a.nodeUID = n.UID
	}
	static := map[string]*v1.Pod{}
	a.mu.RLock()
	for _, p := range a.desired {
		if p.Annotations[podsource.AnnotationSource] == podsource.SourceFile {
			static[p.Namespace+"/"+p.Name] = p
		}
	}
	a.mu.RUnlock()
	pods := a.kube.CoreV1()
	have := map[string]bool{}
	for _, m := range a.apiSource.Mirrors() {
		key := m.Namespace + "/" + m.Name
		sp := static[key]
		if sp != nil && m.Annotations[podsource.AnnotationMirror] == string(sp.UID) && m.DeletionTimestamp == nil {
			have[key] = true
			a.reconcileStatus(sp.UID, m)
			continue
		}
		// Stale (its static pod is gone or changed), or deleted by a user
		// (a deletionTimestamp; the static pod runs on, as the kubelet's):
		// deleted now, and made again at the next pass if its pod runs.
		zero, uid := int64(0), m.UID
		err := pods.Pods(m.Namespace).Delete(ctx, m.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			a.log.Warn("delete a stale mirror pod", "pod", key, "err", err)
			continue
		}
		a.log.Info("deleted a mirror pod", "pod", key, "static pod", sp != nil)
	}
	for key, sp := range static {
		if have[key] {
			continue
		}
		m := &v1.Pod{ObjectMeta: metav1.ObjectMeta{
			Namespace: sp.Namespace, Name: sp.Name, Labels: sp.Labels,
			Annotations:     maps.Clone(sp.Annotations),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.cfg.NodeName, UID: a.nodeUID, Controller: ptrTo(true)}},
		}, Spec: *sp.Spec.DeepCopy()}
		m.Annotations[podsource.AnnotationMirror] = string(sp.UID)
		if _, err := pods.Pods(sp.Namespace).Create(ctx, m, metav1.CreateOptions{}); err != nil {
			if !apierrors.IsAlreadyExists(err) {
				a.log.Warn("create a mirror pod", "pod", key, "err", err)
			}
			continue
		}
		a.log.Info("created a mirror pod", "pod", key)
		a.status.Rewrite(sp.UID) // its status goes to the new mirror
	}
	a.mu.RLock()
	var fromAPI []types.UID
	for uid, p := range a.desired {
		if p.Annotations[podsource.AnnotationSource] == podsource.SourceAPI {
			fromAPI = append(fromAPI, uid)
		}
	}
	a.mu.RUnlock()
	for _, uid := range fromAPI {
		if p := a.apiSource.Get(uid); p != nil {
			a.reconcileStatus(uid, p)
		}
	}
	for uid := range a.diverged {
		if a.workers == nil || !a.workers.known(uid) {
			delete(a.diverged, uid) // gone meanwhile
		}
	}
}

// reconcileStatus writes the pod's status again when the API's copy (api:
// the pod, or a static pod's mirror) says otherwise than the agent on what
// the kubelet owns: the phase or whether the pod is Ready (as the kubelet's
// status manager reconciles: a controller marks the pods of an unreachable
// node not Ready, and they must be Ready again once it is back).
func (a *Agent) reconcileStatus(uid types.UID, api *v1.Pod) {
	ours, ok := a.status.GetPodStatus(uid)
	if !ok || api.DeletionTimestamp != nil || api.Status.Phase == v1.PodSucceeded || api.Status.Phase == v1.PodFailed {
		return
	}
	ready := func(s *v1.PodStatus) v1.ConditionStatus {
		for _, c := range s.Conditions {
			if c.Type == v1.PodReady {
				return c.Status
			}
		}
		return ""
	}
	if api.Status.Phase == ours.Phase && ready(&api.Status) == ready(&ours) {
		delete(a.diverged, uid)
		return
	}
	// The API's copy lags the agent's writes a little: act on what still
	// differs at the next pass.
	if _, seen := a.diverged[uid]; !seen {
		a.diverged[uid] = struct{}{}
		return
	}
	delete(a.diverged, uid)
	a.log.Info("pod status in the API differs from the agent's; writing it again", "pod", podRef(api),
		"api", string(api.Status.Phase)+"/ready="+string(ready(&api.Status)), "agent", string(ours.Phase)+"/ready="+string(ready(&ours)))
	a.status.Rewrite(uid)
}

func ptrTo[T any](v T) *T { return &v }

// finishDelete deletes, with no grace left, a pod the API deleted gracefully
// once its containers and volumes are gone, as the kubelet's status manager
// does; the UID precondition spares a new pod of the same name.
func (a *Agent) finishDelete(ctx context.Context, pod *v1.Pod) error {
	if a.kube == nil {
		return nil
	}
	zero := int64(0)
	uid := pod.UID
	err := a.kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("finish the deletion of pod %s: %w", podRef(pod), err)
	}
	a.log.Info("pod deletion finished", "pod", podRef(pod))
	return nil
}

// housekeeping removes pods the runtime runs for the agent but nobody wants any
// more (their manifest went while the agent was down), and forgets probe
// workers of pods that are gone.
func (a *Agent) housekeeping(ctx context.Context) {
	if !a.sourcesReady.Load() {
		return // until the sources spoke, every pod would look orphaned
	}
	a.mu.RLock()
	desired := make(map[types.UID]sets.Empty, len(a.desired))
	for uid := range a.desired {
		desired[uid] = sets.Empty{}
	}
	a.mu.RUnlock()
	a.probes.CleanupPods(desired)
	a.mu.RLock()
	deleting := a.deleting
	a.mu.RUnlock()

	sandboxes, err := a.rt.ListPodSandbox(ctx, nil)
	if err != nil {
		a.log.Warn("housekeeping: list pod sandboxes", "err", err)
		return
	}
	orphans := sets.New[types.UID]()
	for _, sb := range sandboxes {
		uid := types.UID(sb.GetLabels()[kubetypes.KubernetesPodUIDLabel])
		if uid == "" {
			continue // not the agent's
		}
		if _, ok := desired[uid]; ok || a.workers.known(uid) {
			continue
		}
		orphans.Insert(uid)
	}
	inRuntime := map[types.UID]bool{}
	for _, sb := range sandboxes {
		inRuntime[types.UID(sb.GetLabels()[kubetypes.KubernetesPodUIDLabel])] = true
	}
	// What a pod keeps on the node (cgroup, directory) while it is wanted,
	// still in the runtime, or being worked on (a terminating pod's worker
	// removes them itself).
	keep := func(uid types.UID) bool {
		_, wanted := desired[uid]
		return wanted || inRuntime[uid] || a.workers.known(uid)
	}
	defer a.cgroupHousekeeping(keep)
	// Pods deleted in the API that nothing runs here any more (never
	// started, or stopped while the agent was down): finish their deletion.
	for _, p := range deleting {
		if !inRuntime[p.UID] && !a.workers.known(p.UID) {
			if err := a.finishDelete(ctx, p); err != nil {
				a.log.Warn("housekeeping: finish a deletion", "pod", podRef(p), "err", err)
			}
		}
	}
	defer a.podDirHousekeeping(ctx, keep)
	defer a.mirrorHousekeeping(ctx)
	for uid := range orphans {
		a.log.Info("removing a pod no source wants", "uid", uid)
		rs, err := pleg.Inspect(ctx, a.rt, uid)
		if err != nil {
			a.log.Warn("housekeeping: inspect orphaned pod", "uid", uid, "err", err)
			continue
		}
		if err := a.pods.KillPod(ctx, nil, rs, nil); err != nil {
			a.log.Warn("housekeeping: stop orphaned pod", "uid", uid, "err", err)
			continue
		}
		if err := a.pods.RemovePod(ctx, uid); err != nil {
			a.log.Warn("housekeeping: remove orphaned pod", "uid", uid, "err", err)
		}
		a.cache.Delete(uid)
	}
}

// podDirHousekeeping removes the directories (volumes unmounted first) of pods
// that are neither wanted nor in the runtime nor being worked on: pods that
// vanished while the agent was down, and removals that failed.
func (a *Agent) podDirHousekeeping(ctx context.Context, keep func(types.UID) bool) {
	uids, err := a.volumes.PodDirs()
	if err != nil {
		a.log.Warn("housekeeping: list pod directories", "err", err)
		return
	}
	for _, uid := range uids {
		if keep(uid) {
			continue
		}
		a.log.Info("removing the directory of a pod no source wants", "uid", uid)
		if err := a.pods.RemovePod(ctx, uid); err != nil {
			a.log.Warn("housekeeping: remove orphaned pod directory", "uid", uid, "err", err)
		}
	}
}

// cgroupHousekeeping keeps the pod cgroups in step with the pods: the tiers' CPU
// shares follow the pods (recomputed when the set of pods changed, and every
// minute), and the cgroups of pods that are neither wanted nor still in the
// runtime nor being worked on are removed (pods that vanished while the agent
// was down, removals that failed).
func (a *Agent) cgroupHousekeeping(keep func(types.UID) bool) {
	if a.cgroups == nil {
		return
	}
	if _, err := a.cgroups.Cleanup(keep); err != nil {
		a.log.Warn("housekeeping: remove pod cgroups", "err", err)
	}
	a.mu.RLock()
	pods := make([]*v1.Pod, 0, len(a.desired))
	for _, p := range a.desired {
		pods = append(pods, p)
	}
	a.mu.RUnlock()
	var burstableMilli int64
	for _, p := range pods {
		if qos.Class(p) == v1.PodQOSBurstable {
			req := qos.PodRequests(p)
			burstableMilli += req.Cpu().MilliValue()
		}
	}
	now := a.clock.Now()
	if burstableMilli != a.qosMilli || now.Sub(a.qosUpdated) >= time.Minute {
		if err := a.cgroups.UpdateQOS(pods); err != nil {
			a.log.Warn("housekeeping: update QoS cgroups", "err", err)
			return
		}
		a.qosMilli, a.qosUpdated = burstableMilli, now
	}
}

// stopAllPods terminates and removes every pod, for StopPodsOnExit.
func (a *Agent) stopAllPods(ctx context.Context) {
	a.mu.Lock()
	uids := make([]types.UID, 0, len(a.desired))
	for uid := range a.desired {
		uids = append(uids, uid)
	}
	a.desired = map[types.UID]*v1.Pod{}
	a.mu.Unlock()
	a.log.Info("stopping every pod before exiting", "pods", len(uids))
	for _, uid := range uids {
		a.workers.remove(uid)
	}
	// Keep delivering lifecycle events and probe results while the workers
	// stop their pods: a worker waiting for a container to exit is woken by
	// them, and the PLEG's channel must not fill up.
	deadline := a.clock.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	check := a.clock.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	for a.workers.count() > 0 {
		select {
		case ev := <-a.pleg.Watch():
			a.workers.kick(ev.ID)
		case <-a.probes.Liveness():
		case <-a.probes.Readiness():
		case <-a.probes.Startup():
		case <-check.C():
		case <-deadline.C():
			a.log.Warn("pods still stopping after 2m; exiting anyway", "workers", a.workers.count())
			a.housekeeping(ctx)
			return
		}
	}
	a.housekeeping(ctx) // whatever the workers did not own
}

// Pods returns the desired pods with their current statuses.
func (a *Agent) Pods() []*v1.Pod {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]*v1.Pod, 0, len(a.desired))
	for _, p := range a.desired {
		c := p.DeepCopy()
		if st, ok := a.status.GetPodStatus(p.UID); ok {
			c.Status = st
		}
		out = append(out, c)
	}
	sortPods(out)
	return out
}

// Healthy reports whether the agent keeps up: the PLEG relists in time.
func (a *Agent) Healthy() error {
	if ok, err := a.pleg.Healthy(); !ok {
		if err == nil {
			err = errors.New("PLEG is not healthy")
		}
		return err
	}
	return nil
}

// nodeIPs returns the node's IPs: the configured one, else the first
// non-loopback, non-link-local IPv4 address of net.InterfaceAddrs (interfaces in
// kernel order; none when there is none). Unlike the kubelet it neither looks up
// the hostname nor picks the default route's interface.
func nodeIPs(configured string) []string {
	if configured != "" {
		return []string{configured}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if ip4 := ipn.IP.To4(); ip4 != nil {
			out = append(out, ip4.String())
			break
		}
	}
	return out
}

// certDir is --cert-dir, by default <root-dir>/pki: the serving certificate
// made up when none is given, the client certificates.
func (a *Agent) certDir() string {
	if a.cfg.CertDir != "" {
		return a.cfg.CertDir
	}
	return filepath.Join(a.cfg.RootDir, "pki")
}

// afterCredentials runs run once the node has a client certificate (at once
// without a clientcert.Manager), or with ctx ended. Static pods run
// meanwhile; the node registers, and the API's pods are watched, once the
// API server can tell who the node is.
func (a *Agent) afterCredentials(run func(context.Context)) func(context.Context) {
	if a.creds == nil {
		return run
	}
	return func(ctx context.Context) {
		select {
		case <-a.creds.Ready():
		case <-ctx.Done():
		}
		run(ctx) // with ctx ended too: it returns at once and cleans up
	}
}

// sourceAfterCredentials is a pod source that runs once the node's client
// certificate is there.
type sourceAfterCredentials struct {
	podsource.Source
	a *Agent
}

func (s sourceAfterCredentials) Run(ctx context.Context) { s.a.afterCredentials(s.Source.Run)(ctx) }
