package cri

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/cni"
)

// sandboxRecord is what the shim persists about a pod sandbox.
type sandboxRecord struct {
	ID        string                    `json:"id"`
	Config    *runtime.PodSandboxConfig `json:"-"`
	State     runtime.PodSandboxState   `json:"state"`
	CreatedAt int64                     `json:"createdAt"`
	Handler   string                    `json:"runtimeHandler,omitempty"`
	Hostname  string                    `json:"hostname"`
	Namespace map[string]string         `json:"namespaces,omitempty"` // kind → pinned file
	Cgroup    string                    `json:"cgroupParent"`
	OwnCgroup bool                      `json:"ownCgroup,omitempty"` // the shim created the parent and removes it
	Shm       string                    `json:"shm,omitempty"`       // tmpfs mounted for the pod's /dev/shm
	// InfraPid and InfraStart identify the process holding the pod's PID
	// namespace (pid mode POD; see sandbox_infra.go).
	InfraPid int `json:"infraPid,omitempty"`
	// UserNS holds the maps of the pod's own user namespace (nil: the host's).
	UserNS     *podUserns `json:"userns,omitempty"`
	InfraStart uint64     `json:"infraStart,omitempty"`
	// Network is the pod's CNI attachment (nil with the host network): its
	// addresses, and what DEL needs, as also kept in the network journal.
	Network *cni.Attachment `json:"network,omitempty"`
}

// containerRecord is what the shim persists about a container.
type containerRecord struct {
	ID          string                   `json:"id"`
	SandboxID   string                   `json:"sandboxId"`
	Config      *runtime.ContainerConfig `json:"-"`
	ImageID     string                   `json:"imageId"`
	ImageRef    string                   `json:"imageRef"`
	ImageName   string                   `json:"imageName"`
	Layers      []string                 `json:"layers"`
	LogPath     string                   `json:"logPath,omitempty"`
	State       runtime.ContainerState   `json:"state"`
	CreatedAt   int64                    `json:"createdAt"`
	StartedAt   int64                    `json:"startedAt,omitempty"`
	FinishedAt  int64                    `json:"finishedAt,omitempty"`
	ExitCode    int32                    `json:"exitCode"`
	Reason      string                   `json:"reason,omitempty"`
	Message     string                   `json:"message,omitempty"`
	Pid         int                      `json:"pid,omitempty"`
	PidStart    uint64                   `json:"pidStart,omitempty"` // start time of Pid, against pid reuse
	MonitorPid  int                      `json:"monitorPid,omitempty"`
	MonitorTime uint64                   `json:"monitorStart,omitempty"`
	OwnPidNS    bool                     `json:"ownPidNS"`
	StopSignal  string                   `json:"stopSignal,omitempty"`
	User        *runtime.ContainerUser   `json:"-"`
	// ImageVolumes are the images the container mounts as volumes
	// (config.mounts[i].image; see image_volume.go).
	ImageVolumes []imageVolume `json:"imageVolumes,omitempty"`
}

// persisted wraps a record with its CRI config encoded by protojson, so files stay
// readable and the proto's own field names and enums are used.
type persisted[T any] struct {
	Record T               `json:"record"`
	Config json.RawMessage `json:"config"`
	User   json.RawMessage `json:"user,omitempty"`
}

func writeSandboxRecord(path string, r *sandboxRecord) error {
	cfg, err := protojson.Marshal(r.Config)
	if err != nil {
		return fmt.Errorf("encode sandbox %s config: %w", r.ID, err)
	}
	return atomicfile.ReplaceJSON(path, persisted[*sandboxRecord]{Record: r, Config: cfg}, 0o600)
}

func readSandboxRecord(path string) (*sandboxRecord, error) {
	var p persisted[*sandboxRecord]
	if err := atomicfile.ReadJSON(path, &p); err != nil {
		return nil, err
	}
	if p.Record == nil {
		return nil, fmt.Errorf("decode %s: no record", path)
	}
	p.Record.Config = &runtime.PodSandboxConfig{}
	if err := protojson.Unmarshal(p.Config, p.Record.Config); err != nil {
		return nil, fmt.Errorf("decode %s: config: %w", path, err)
	}
	return p.Record, nil
}

func writeContainerRecord(path string, r *containerRecord) error {
	cfg, err := protojson.Marshal(r.Config)
	if err != nil {
		return fmt.Errorf("encode container %s config: %w", r.ID, err)
	}
	p := persisted[*containerRecord]{Record: r, Config: cfg}
	if r.User != nil {
		if p.User, err = protojson.Marshal(r.User); err != nil {
			return fmt.Errorf("encode container %s user: %w", r.ID, err)
		}
	}
	return atomicfile.ReplaceJSON(path, p, 0o600)
}

func readContainerRecord(path string) (*containerRecord, error) {
	var p persisted[*containerRecord]
	if err := atomicfile.ReadJSON(path, &p); err != nil {
		return nil, err
	}
	if p.Record == nil {
		return nil, fmt.Errorf("decode %s: no record", path)
	}
	p.Record.Config = &runtime.ContainerConfig{}
	if err := protojson.Unmarshal(p.Config, p.Record.Config); err != nil {
		return nil, fmt.Errorf("decode %s: config: %w", path, err)
	}
	if len(p.User) > 0 {
		p.Record.User = &runtime.ContainerUser{}
		if err := protojson.Unmarshal(p.User, p.Record.User); err != nil {
			return nil, fmt.Errorf("decode %s: user: %w", path, err)
		}
	}
	return p.Record, nil
}

// paths knows where everything lives. Records and runtime state (mount points,
// pinned namespaces, exit records) are under the state directory: none of it means
// anything after a reboot. Writable layers and images are under the root directory.
type paths struct {
	root, state string
}

func (p paths) sandboxState(id string) string { return filepath.Join(p.state, "sandboxes", id) }
func (p paths) sandboxRecord(id string) string {
	return filepath.Join(p.sandboxState(id), "sandbox.json")
}
func (p paths) sandboxNS(id string) string      { return filepath.Join(p.sandboxState(id), "ns") }
func (p paths) sandboxShm(id string) string     { return filepath.Join(p.sandboxState(id), "shm") }
func (p paths) sandboxRoot(id string) string    { return filepath.Join(p.root, "sandboxes", id) }
func (p paths) containerState(id string) string { return filepath.Join(p.state, "containers", id) }
func (p paths) containerRecord(id string) string {
	return filepath.Join(p.containerState(id), "container.json")
}
func (p paths) bundle(id string) string        { return filepath.Join(p.containerState(id), "bundle") }
func (p paths) rootfs(id string) string        { return filepath.Join(p.bundle(id), "rootfs") }
func (p paths) containerRoot(id string) string { return filepath.Join(p.root, "containers", id) }
func (p paths) exitsDir() string               { return filepath.Join(p.state, "exits") }
func (p paths) exitFile(id string) string      { return filepath.Join(p.exitsDir(), id+".json") }
func (p paths) runcRoot() string               { return filepath.Join(p.state, "runc") }
func (p paths) images() string                 { return filepath.Join(p.root, "images") }

// imageVolumes holds the mount points of a container's image volumes, one per
// mount of the request that names an image, by its index in config.mounts.
func (p paths) imageVolumes(id string) string {
	return filepath.Join(p.containerState(id), "image-volumes")
}
func (p paths) imageVolume(id string, mount int) string {
	return filepath.Join(p.imageVolumes(id), strconv.Itoa(mount))
}

func (p paths) mkdirs() error {
	for _, d := range []string{
		filepath.Join(p.state, "sandboxes"), filepath.Join(p.state, "containers"),
		p.exitsDir(), p.runcRoot(), filepath.Join(p.root, "sandboxes"),
		filepath.Join(p.root, "containers"), p.images(),
	} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return err
		}
	}
	return nil
}

// updateContainer changes c's record as containerd's UpdateSync does: fn edits a
// copy of the record and reports whether it changed anything; a changed copy is
// written to disk and only then becomes the record readers see. When the write
// fails, memory keeps the record that is on disk and the error is returned, so
// no reader ever sees a state a restart would lose. A record that the update
// makes EXITED or UNKNOWN wakes the container's waiters (c.exited).
//
// Every change of a container's record after it is created goes through here.
func (s *Server) updateContainer(c *container, fn func(r *containerRecord) bool) (changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := *c.rec
	if !fn(&next) {
		return false, nil
	}
	if err := writeContainerRecord(s.paths.containerRecord(next.ID), &next); err != nil {
		return false, fmt.Errorf("save container %s: %w", next.ID, err)
	}
	c.rec = &next
	if next.State == runtime.ContainerState_CONTAINER_EXITED || next.State == runtime.ContainerState_CONTAINER_UNKNOWN {
		c.markExited()
	}
	return true, nil
}

// updateSandbox is updateContainer for a sandbox's record.
func (s *Server) updateSandbox(sb *sandbox, fn func(r *sandboxRecord) bool) (changed bool, err error) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	next := *sb.rec
	if !fn(&next) {
		return false, nil
	}
	if err := writeSandboxRecord(s.paths.sandboxRecord(next.ID), &next); err != nil {
		return false, fmt.Errorf("save pod sandbox %s: %w", next.ID, err)
	}
	sb.rec = &next
	return true, nil
}
