package podruntime

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	"k8s.io/utils/clock"

	"github.com/nodekit-dev/nodekit/agent/timeline"
	"github.com/nodekit-dev/nodekit/internal/containerid"
	"github.com/nodekit-dev/nodekit/objects"
	"github.com/nodekit-dev/nodekit/volumes"
)

// Defaults of Options.
const (
	DefaultRootDir        = "/var/lib/nodekit-kubelet"
	DefaultPodLogsDir     = "/var/log/pods"
	DefaultResolvConf     = "/etc/resolv.conf"
	DefaultCPUQuotaPeriod = 100 * time.Millisecond

	// The kubelet's back-off: 10 s doubling to 5 min, for crash loops and image
	// pulls alike.
	DefaultBackOffInitial = 10 * time.Second
	DefaultBackOffMax     = 300 * time.Second

	// DefaultTerminationGracePeriod applies when a pod does not say (the API's
	// default).
	DefaultTerminationGracePeriod = 30
	// MinimumGracePeriod is the least time a container is given between SIGTERM
	// and SIGKILL (the kubelet's minimumGracePeriodInSeconds).
	MinimumGracePeriod = 2
)

// Cgroup drivers.
const (
	CgroupDriverCgroupfs = "cgroupfs"
	CgroupDriverSystemd  = "systemd"
)

// Options configure a Manager. Runtime and Images are required.
type Options struct {
	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService
	// RuntimeName is the CRI runtime's name (Version().RuntimeName), used in
	// logs. Container IDs given to the manager may carry any "<name>://"
	// prefix (the API's form); it is stripped.
	RuntimeName string

	// RootDir holds pod directories (<RootDir>/pods/<uid>); default
	// DefaultRootDir. PodLogsDir holds CRI logs (<PodLogsDir>/<ns>_<name>_<uid>);
	// default DefaultPodLogsDir.
	RootDir, PodLogsDir string

	// PodCgroups, when set, makes each pod's cgroup (with its resources) at every
	// sync before anything else, names the sandbox's cgroup parent, and removes
	// the cgroup in RemovePod (the kubelet's cgroupsPerQOS). Without it the
	// parent is named from CgroupDriver and CgroupRoot and left to the runtime to
	// create.
	PodCgroups PodCgroups
	// CgroupDriver is "cgroupfs" (default) or "systemd"; CgroupRoot is where the
	// kubepods hierarchy lives for cgroupfs (default "/", so /kubepods/...).
	CgroupDriver, CgroupRoot string
	// DisableCPUQuota turns off CFS quota for CPU limits (the kubelet's
	// --cpu-cfs-quota=false). CPUQuotaPeriod defaults to 100 ms.
	DisableCPUQuota bool
	CPUQuotaPeriod  time.Duration
	// MemoryCapacity is the node's memory in bytes, for the oom_score_adj of
	// burstable containers; default: MemTotal of /proc/meminfo.
	MemoryCapacity int64
	// NodeAllocatable stands in for unset limits in resourceFieldRef env vars;
	// default: the node's CPUs and MemoryCapacity.
	NodeAllocatable v1.ResourceList

	// NodeName and HostIPs feed the downward API (spec.nodeName, status.hostIP);
	// HostIPs are also the IPs of host-network pods.
	NodeName string
	HostIPs  []string

	// ClusterDNS and ClusterDomain give ClusterFirst pods the cluster's DNS;
	// without ClusterDNS they get the host's resolver (DNSConfig left to the
	// runtime). ResolvConf is the host's resolver file merged with a pod's
	// dnsConfig; default /etc/resolv.conf.
	ClusterDNS    []string
	ClusterDomain string
	ResolvConf    string

	// SeccompDefault makes RuntimeDefault the seccomp profile of containers
	// that do not choose one (the kubelet's --seccomp-default).
	SeccompDefault bool

	// ImageBackOff and CrashLoopBackOff default to 10 s doubling to 5 min.
	ImageBackOff     *BackOff
	CrashLoopBackOff *BackOff

	// Probes reports the latest liveness or startup result of a container (bare
	// CRI id). A liveness Failure gets the container killed and restarted per
	// the restart policy; a sidecar with a startup probe counts as started once
	// it reports Success. Nil: no probe results.
	Probes func(kind ProbeKind, containerID string) ProbeResult

	// Volumes sets up the pods' volumes; default: a volumes.Manager on RootDir
	// with Objects and the node's allocatable (an embedder that wants volumes
	// kept current while pods run gives its own and runs its Run).
	Volumes *volumes.Manager
	// Objects gives the configMaps and secrets that env (valueFrom, envFrom)
	// and volumes reference; nil: there are none (non-optional references
	// fail with CreateContainerConfigError or FailedMount).
	Objects objects.Source

	// HTTPClient runs httpGet lifecycle hooks; default: TLS without
	// verification, as the kubelet.
	HTTPClient *http.Client
	// Recorder receives the kubelet's pod and container events; nil: none.
	Recorder EventRecorder
	// Timeline, when set, gets what the manager decides and does for each
	// pod it knows (timeline.Recorder.Add): every sync decision with its
	// reason (create sandbox, start, restart, kill), back-off waits, image
	// pulls, hook results, and every event Recorder gets, as a user-facing
	// entry. The contexts of the manager's CRI calls carry the pod
	// (timeline.WithPod), for an instrumented runtime to record them.
	Timeline *timeline.Recorder
	Clock    clock.WithTicker
	Logger   *slog.Logger
}

// ProbeKind names the probes whose results change what runs.
type ProbeKind int

const (
	LivenessProbe ProbeKind = iota
	StartupProbe
)

// ProbeResult is a probe's verdict, in the order of probes.Result (a cast
// converts).
type ProbeResult int

const (
	ProbeUnknown ProbeResult = iota
	ProbeSuccess
	ProbeFailure
)

// The reasons a sync step fails, as the kubelet names them. Result.Err wraps
// one; WaitingReason returns the name of the one that kept a container from
// starting.
var (
	ErrCrashLoopBackOff      = errors.New("CrashLoopBackOff")
	ErrImagePull             = errors.New("ErrImagePull")
	ErrImagePullBackOff      = errors.New("ImagePullBackOff")
	ErrImageNeverPull        = errors.New("ErrImageNeverPull")
	ErrInvalidImageName      = errors.New("InvalidImageName")
	ErrImageInspect          = errors.New("ImageInspectError")
	ErrCreateContainerConfig = errors.New("CreateContainerConfigError")
	ErrCreateContainer       = errors.New("CreateContainerError")
	ErrRunContainer          = errors.New("RunContainerError")
	ErrPostStartHook         = errors.New("PostStartHookError")
	ErrKillContainer         = errors.New("KillContainerError")
	ErrCreatePodSandbox      = errors.New("CreatePodSandboxError")
	ErrConfigPodSandbox      = errors.New("ConfigPodSandboxError")
	ErrKillPodSandbox        = errors.New("KillPodSandboxError")
	ErrMountVolumes          = errors.New("FailedMount")
	ErrCreatePodCgroup       = errors.New("FailedCreatePodContainer")
)

// PodCgroups makes and removes pod cgroups (agent/qos.Manager implements it).
type PodCgroups interface {
	// EnsurePod creates or updates the pod's cgroup and returns the cgroup parent
	// for its sandbox.
	EnsurePod(pod *v1.Pod) (parent string, err error)
	// CgroupParent is the pod's cgroup parent.
	CgroupParent(pod *v1.Pod) string
	// RemovePod removes the pod's cgroup.
	RemovePod(uid types.UID) error
}

// Result is the outcome of SyncPod.
type Result struct {
	// Err joins the failures of the sync, each wrapping one of the Err*
	// reasons; nil when every step succeeded.
	Err error
	// Reason and Message describe the first failure (Reason is the name of its
	// Err* value, e.g. "CrashLoopBackOff").
	Reason, Message string
	// RetryAfter, when positive, is when the shortest back-off in the way ends:
	// sync the pod again then.
	RetryAfter time.Duration
}

// failure is a failed step: one of the Err* reasons, a message, and for
// back-offs when to try again.
type failure struct {
	reason error
	msg    string
	retry  time.Duration
}

func fail(reason error, format string, args ...any) *failure {
	return &failure{reason: reason, msg: fmt.Sprintf(format, args...)}
}

func (r *Result) add(subject string, f *failure) {
	r.fail(f.reason, subject, f.msg)
	r.retryAfter(f.retry)
}

func (r *Result) fail(reason error, subject, msg string) {
	err := fmt.Errorf("%w: %s: %s", reason, subject, msg)
	if r.Err == nil {
		r.Reason, r.Message = reason.Error(), msg
	}
	r.Err = errors.Join(r.Err, err)
}

func (r *Result) retryAfter(d time.Duration) {
	if d > 0 && (r.RetryAfter == 0 || d < r.RetryAfter) {
		r.RetryAfter = d
	}
}

// Manager runs pods on a CRI runtime: it decides what a pod needs (sandbox,
// init containers, sidecars, app containers, restarts) and does it. Methods for
// different pods may run concurrently; calls for one pod must not (the pod
// worker serializes them).
type Manager struct {
	rt          internalapi.RuntimeService
	img         internalapi.ImageManagerService
	runtimeName string
	recorder    EventRecorder
	timeline    *timeline.Recorder

	rootDir, podLogsDir      string
	cgroupDriver, cgroupRoot string
	podCgroups               PodCgroups
	cpuQuota                 bool
	cpuPeriod                int64 // µs
	memoryCapacity           int64
	allocatable              v1.ResourceList
	nodeName                 string
	hostIPs                  []string
	clusterDNS               []string
	clusterDomain            string
	resolvConf               string
	seccompDefault           bool
	imageBackOff, crashLoop  *BackOff
	probes                   func(ProbeKind, string) ProbeResult
	volumes                  *volumes.Manager
	objects                  objects.Source
	http                     *http.Client
	clock                    clock.WithTicker
	log                      *slog.Logger

	mu       sync.Mutex
	reasons  map[types.UID]map[string]waiting // why a container is not started
	messages map[string]string                // termination messages of exited containers, by id
}

type waiting struct{ reason, message string }

// New returns a Manager.
func New(o Options) (*Manager, error) {
	if o.Runtime == nil || o.Images == nil {
		return nil, errors.New("podruntime: Options.Runtime and Options.Images are required")
	}
	m := &Manager{
		rt: o.Runtime, img: o.Images, runtimeName: o.RuntimeName,
		rootDir: o.RootDir, podLogsDir: o.PodLogsDir,
		cgroupDriver: o.CgroupDriver, cgroupRoot: o.CgroupRoot, podCgroups: o.PodCgroups,
		cpuQuota: !o.DisableCPUQuota, cpuPeriod: int64(o.CPUQuotaPeriod / time.Microsecond),
		memoryCapacity: o.MemoryCapacity, allocatable: o.NodeAllocatable,
		nodeName: o.NodeName, hostIPs: o.HostIPs,
		clusterDNS: o.ClusterDNS, clusterDomain: o.ClusterDomain, resolvConf: o.ResolvConf,
		seccompDefault: o.SeccompDefault,
		imageBackOff:   o.ImageBackOff, crashLoop: o.CrashLoopBackOff,
		probes: o.Probes, http: o.HTTPClient, clock: o.Clock, log: o.Logger,
		volumes: o.Volumes, objects: o.Objects, recorder: o.Recorder, timeline: o.Timeline,
		reasons:  map[types.UID]map[string]waiting{},
		messages: map[string]string{},
	}
	if m.rootDir == "" {
		m.rootDir = DefaultRootDir
	}
	if m.podLogsDir == "" {
		m.podLogsDir = DefaultPodLogsDir
	}
	switch m.cgroupDriver {
	case "":
		m.cgroupDriver = CgroupDriverCgroupfs
	case CgroupDriverCgroupfs, CgroupDriverSystemd:
	default:
		return nil, fmt.Errorf("podruntime: cgroup driver %q: want %q or %q", m.cgroupDriver, CgroupDriverCgroupfs, CgroupDriverSystemd)
	}
	if m.cgroupRoot == "" {
		m.cgroupRoot = "/"
	}
	if m.cpuPeriod <= 0 {
		m.cpuPeriod = int64(DefaultCPUQuotaPeriod / time.Microsecond)
	}
	if m.memoryCapacity <= 0 {
		m.memoryCapacity = hostMemory()
	}
	if m.allocatable == nil {
		m.allocatable = v1.ResourceList{
			v1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(m.memoryCapacity, resource.BinarySI),
		}
	}
	if m.resolvConf == "" {
		m.resolvConf = DefaultResolvConf
	}
	if m.clock == nil {
		m.clock = clock.RealClock{}
	}
	if m.imageBackOff == nil {
		m.imageBackOff = NewBackOff(DefaultBackOffInitial, DefaultBackOffMax, m.clock)
	}
	if m.crashLoop == nil {
		m.crashLoop = NewBackOff(DefaultBackOffInitial, DefaultBackOffMax, m.clock)
	}
	if m.http == nil {
		m.http = &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet's lifecycle hooks
			DisableKeepAlives: true,
			Proxy:             http.ProxyFromEnvironment,
		}}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.volumes == nil {
		v, err := volumes.New(volumes.Options{
			RootDir: m.rootDir,
			Objects: m.objects,
			Node:    volumes.NodeInfo{Name: m.nodeName, Allocatable: m.allocatable},
			Logger:  m.log,
		})
		if err != nil {
			return nil, fmt.Errorf("podruntime: %w", err)
		}
		m.volumes = v
	}
	if m.runtimeName != "" {
		m.log = m.log.With("runtime", m.runtimeName)
	}
	return m, nil
}

// WaitingReason says why the manager did not (re)start a container that should
// run: the name of an Err* value (CrashLoopBackOff, ErrImagePull,
// ImagePullBackOff, CreateContainerConfigError, ...) and a message. It is
// cleared once the container starts. Empty: no reason known.
func (m *Manager) WaitingReason(uid types.UID, container string) (reason, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.reasons[uid][container]
	return w.reason, w.message
}

func (m *Manager) setWaiting(uid types.UID, container string, reason error, msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reasons[uid] == nil {
		m.reasons[uid] = map[string]waiting{}
	}
	m.reasons[uid][container] = waiting{reason: reason.Error(), message: msg}
}

func (m *Manager) clearWaiting(uid types.UID, container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.reasons[uid], container)
}

func (m *Manager) probe(kind ProbeKind, containerID string) ProbeResult {
	if m.probes == nil {
		return ProbeUnknown
	}
	return m.probes(kind, containerID)
}

// bareID strips a "<runtime>://" prefix from a container ID (a bare ID stays).
func bareID(id string) string { return containerid.CRIID(id) }

func podRef(pod *v1.Pod) string { return pod.Namespace + "/" + pod.Name }
