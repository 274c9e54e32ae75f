package spec

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Input is everything Generate needs to build one container's spec. The caller
// (the CreateContainer handler) resolves the image, mounts the rootfs and
// knows the pod's namespaces and files; Generate only combines them.
type Input struct {
	ID        string                   // container ID
	Config    *runtime.ContainerConfig // the CRI request's config
	Sandbox   *runtime.PodSandboxConfig
	SandboxID string
	Image     ocispec.ImageConfig // the image's config (entrypoint, cmd, env, user, workdir)
	ImageName string              // for the io.kubernetes.cri.image-name annotation; "" means the config's image

	// Rootfs is the host path of the mounted container rootfs. It becomes
	// root.path, and users and groups are looked up in its /etc/passwd and
	// /etc/group.
	Rootfs string
	// CgroupsPath is linux.cgroupsPath as the caller computed it (cgroupfs
	// "/parent/id" or systemd "slice:prefix:name").
	CgroupsPath string
	Namespaces  Namespaces
	// Hostname is the pod's hostname, for HOSTNAME and the UTS namespace.
	// "" means the sandbox config's hostname, and if that is empty too (host
	// network pods) the node's, as containerd does.
	Hostname string
	Files    SandboxFiles
	// ImageVolumes are the host paths of the images mounted as volumes (the
	// mounts with image set, KEP-4639), by their index in Config.Mounts. The
	// caller mounts each image read-only (and resolves image_sub_path in it);
	// Generate binds that path read-only at the mount's container_path.
	ImageVolumes map[int]string
	// OOMScoreAdjMin is the lowest oom_score_adj the runtime may set
	// (containerd's restrict_oom_score_adj): a lower request is raised to it,
	// not refused. Without CAP_SYS_RESOURCE that is the runtime's own value
	// (/proc/self/oom_score_adj). Note the zero value raises every negative
	// request to 0; pass -1000 for no restriction.
	OOMScoreAdjMin int
	// DefaultCapabilities is the capability set of an unprivileged container
	// before the request's add/drop; nil means the package's DefaultCapabilities.
	DefaultCapabilities []string
	// Host describes the node. nil means DetectHost's answer for this
	// process (detected once), which is right when this process or its
	// children run runc.
	Host *Host
	// Note, when set, is told about parts of the request that are accepted
	// but have no effect on this node (SELinux options on a node without
	// SELinux, for example), so the caller can log them. Generate itself
	// never logs.
	Note func(msg string)
}

// Namespaces are the pod's pinned namespace files. "" means the host's
// namespace for Network, IPC and UTS.
//
// PID is the namespace a container whose config asks for POD (the pod's) or
// TARGET (another container's) joins. With pid POD and no path the container
// gets a namespace of its own, unless HostPID says the pod uses the host's.
// CONTAINER always means a new namespace and NODE the host's.
type Namespaces struct {
	Network string
	IPC     string
	UTS     string
	PID     string
	HostPID bool
	// User is the pod's pinned user namespace ("" = the host's), which owns
	// the pod's other namespaces; UIDMappings and GIDMappings are its maps.
	User        string
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
}

// SandboxFiles are host paths of the pod's files bind-mounted into every
// container. "" means none (for Shm: a private tmpfs).
type SandboxFiles struct {
	Hosts    string // /etc/hosts
	Resolv   string // /etc/resolv.conf
	Hostname string // /etc/hostname
	Shm      string // /dev/shm, a directory
}

// Host holds facts about the node that change what a valid spec is. The zero
// value describes a cgroup v1 node without swap accounting, hugetlb, AppArmor
// or SELinux, with a kernel new enough for every seccomp rule.
type Host struct {
	// CgroupV2 is true on the unified hierarchy: containers get a private
	// cgroup namespace and linux.resources.unified is accepted.
	CgroupV2 bool
	// SwapAccounting is true when memory.memsw.* (v1) or memory.swap.max (v2)
	// exist. Without it memory.swap is never set: runc would fail to write it.
	SwapAccounting bool
	// Hugetlb is true when the hugetlb controller is available; without it
	// hugepage limits are dropped (containerd's
	// tolerate_missing_hugetlb_controller, on by default).
	Hugetlb bool
	// Capabilities are the capabilities the runtime holds, granted for
	// privileged containers and for "ALL" (containerd uses the same set):
	// asking runc for one it does not hold fails. nil means every capability
	// this package knows.
	Capabilities []string
	// MaxNoFile is the hard RLIMIT_NOFILE the runtime runs with; the default
	// container limit is capped to it. 0 means no cap.
	MaxNoFile uint64
	// AppArmor is true when the kernel enforces AppArmor: only then can a
	// Localhost AppArmor profile be applied.
	AppArmor bool
	// SELinux is true when SELinux is enabled; without it SELinux options are
	// ignored (and noted).
	SELinux bool
	// Kernel is the kernel release (uname -r), for the seccomp rules that
	// depend on the kernel version; "" means a recent kernel.
	Kernel string
}

// FieldError reports an invalid request. Field is the CRI proto field path
// relative to the ContainerConfig ("linux.resources.cpu_quota", "mounts[2].propagation");
// fields of the pod's config are prefixed "sandbox_config.".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "invalid " + e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Annotation keys set on every container, as containerd sets them.
const (
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
	AnnotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnotationContainerName    = "io.kubernetes.cri.container-name"
	AnnotationImageName        = "io.kubernetes.cri.image-name"

	// ContainerTypeContainer is the value of AnnotationContainerType.
	ContainerTypeContainer = "container"
)

// Generate builds the OCI runtime spec for one container. Invalid requests
// fail with a *FieldError; other errors (unreadable /etc/passwd, a missing
// input) are plain.
func Generate(in Input) (*specs.Spec, error) {
	cfg := in.Config
	if cfg == nil {
		return nil, fieldErr("config", "container config is required")
	}
	if cfg.GetMetadata() == nil {
		return nil, fieldErr("metadata", "container config must include metadata")
	}
	if in.Sandbox == nil {
		return nil, fieldErr("sandbox_config", "pod sandbox config is required")
	}
	if in.Sandbox.GetMetadata() == nil {
		return nil, fieldErr("sandbox_config.metadata", "pod sandbox config must include metadata")
	}
	if in.Rootfs == "" || !filepath.IsAbs(in.Rootfs) {
		return nil, fmt.Errorf("container %s: rootfs must be an absolute host path, got %q", in.ID, in.Rootfs)
	}
	if in.Host == nil {
		h, err := detectedHost()
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", in.ID, err)
		}
		in.Host = &h
	}
	sc := cfg.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !in.Sandbox.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, fieldErr("linux.security_context.privileged", "no privileged container allowed in a sandbox that is not privileged")
	}

	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: in.Rootfs, Readonly: sc.GetReadonlyRootfs()},
		Process: &specs.Process{NoNewPrivileges: sc.GetNoNewPrivs()},
		Linux: &specs.Linux{
			CgroupsPath: in.CgroupsPath,
			Resources:   &specs.LinuxResources{},
		},
	}

	if err := setProcess(s.Process, in); err != nil {
		return nil, err
	}
	if err := setUser(s.Process, in); err != nil {
		return nil, err
	}
	if err := setCapabilities(s.Process, in); err != nil {
		return nil, err
	}
	if err := setNamespaces(s, in); err != nil {
		return nil, err
	}
	if err := setSysctls(s, in); err != nil {
		return nil, err
	}
	if err := setMounts(s, in); err != nil {
		return nil, err
	}
	if err := setDevices(s, in); err != nil {
		return nil, err
	}
	if err := setResources(s, in); err != nil {
		return nil, err
	}
	if err := setSecurity(s, in); err != nil {
		return nil, err
	}
	s.Annotations = annotations(in)
	return s, nil
}

// annotations are the config's annotations plus containerd's CRI set, which
// wins on a clash.
func annotations(in Input) map[string]string {
	a := make(map[string]string, len(in.Config.GetAnnotations())+7)
	maps.Copy(a, in.Config.GetAnnotations())
	md := in.Sandbox.GetMetadata()
	a[AnnotationContainerType] = ContainerTypeContainer
	a[AnnotationSandboxID] = in.SandboxID
	a[AnnotationSandboxName] = md.GetName()
	a[AnnotationSandboxNamespace] = md.GetNamespace()
	a[AnnotationSandboxUID] = md.GetUid()
	a[AnnotationContainerName] = in.Config.GetMetadata().GetName()
	a[AnnotationImageName] = imageName(in)
	return a
}

// imageName is Input.ImageName, else the name the user asked for, else the
// image reference the kubelet sent (containerd prefers the user's name too).
func imageName(in Input) string {
	switch img := in.Config.GetImage(); {
	case in.ImageName != "":
		return in.ImageName
	case img.GetUserSpecifiedImage() != "":
		return img.GetUserSpecifiedImage()
	default:
		return img.GetImage()
	}
}

// hostname is the pod's hostname: Input.Hostname, the sandbox config's, or
// the node's.
func hostname(in Input) (string, error) {
	if in.Hostname != "" {
		return in.Hostname, nil
	}
	if h := in.Sandbox.GetHostname(); h != "" {
		return h, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("container %s: no pod hostname given and reading the node's failed: %w", in.ID, err)
	}
	return h, nil
}

var errUnsupported = errors.New("not supported by this runtime")

// note passes msg to in.Note, if set.
func note(in Input, format string, args ...any) {
	if in.Note != nil {
		in.Note(fmt.Sprintf(format, args...))
	}
}

// detectedHost is DetectHost, run once.
var detectedHost = sync.OnceValues(DetectHost)
