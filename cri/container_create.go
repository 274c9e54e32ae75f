package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/image"
	"github.com/nodekit-dev/nodekit/cri/podns"
	"github.com/nodekit-dev/nodekit/cri/spec"
)

// CreateContainer prepares a container in a sandbox: its rootfs (an overlay of the
// image's layers and a fresh writable layer), its image volumes (image_volume.go)
// and its OCI bundle. No process runs until StartContainer.
func (s *Server) CreateContainer(ctx context.Context, req *runtime.CreateContainerRequest) (*runtime.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	switch {
	case req.GetPodSandboxId() == "":
		return nil, invalid("pod_sandbox_id", "empty")
	case cfg == nil:
		return nil, invalid("config", "missing")
	case cfg.GetMetadata() == nil:
		return nil, invalid("config.metadata", "missing")
	case cfg.GetMetadata().GetName() == "":
		return nil, invalid("config.metadata.name", "empty")
	case cfg.GetImage().GetImage() == "":
		return nil, invalid("config.image.image", "empty")
	}
	for i, m := range cfg.GetMounts() {
		if m.GetRecursiveReadOnly() && !s.features.rro {
			return nil, invalid(fmt.Sprintf("config.mounts[%d].recursive_read_only", i), "the OCI runtime %s does not support recursive read-only mounts", s.opts.Runtime)
		}
		if err := checkImageVolume(i, m); err != nil {
			return nil, err
		}
	}
	sb, err := s.objs.sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	sb.op.Lock()
	defer sb.op.Unlock()
	sbRec := sb.snapshot()
	if sbRec.State != runtime.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", sbRec.ID)
	}
	pidNS, hostPID, err := s.containerPidNamespace(cfg, &sbRec)
	if err != nil {
		return nil, err
	}
	sandboxCfg := req.GetSandboxConfig()
	if sandboxCfg == nil {
		sandboxCfg = sbRec.Config
	}

	// No image this container uses may be removed until it is listed.
	s.imageUse.RLock()
	defer s.imageUse.RUnlock()
	img, err := s.images.Get(cfg.GetImage().GetImage())
	if errors.Is(err, image.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "config.image.image: image %q not found", cfg.GetImage().GetImage())
	}
	if err != nil {
		return nil, grpcError(codes.Internal, err, "look up image %q", cfg.GetImage().GetImage())
	}
	lowers, err := s.images.LayerDirs(img)
	if err != nil {
		return nil, grpcError(codes.Internal, err, "layers of image %s", img.ID)
	}
	volumeImages, err := s.lookupImageVolumes(cfg)
	if err != nil {
		return nil, err
	}

	id := newID()
	nameKey := containerNameKey(cfg.GetMetadata(), sbRec.Config.GetMetadata())
	if err := s.objs.reserve(nameKey, id, "container"); err != nil {
		return nil, err
	}
	undo := &cleanups{}
	undo.add(func() error { s.objs.release(nameKey, id); return nil })
	defer func() {
		if err := undo.run(); err != nil {
			s.log.Error("cleaning up after a failed CreateContainer", "container", id, "err", err)
		}
	}()

	stateDir, rootDir := s.paths.containerState(id), s.paths.containerRoot(id)
	undo.add(func() error { return os.RemoveAll(rootDir) })
	undo.add(func() error { return os.RemoveAll(stateDir) })
	rootfs := s.paths.rootfs(id)
	undo.add(func() error { return unmount(rootfs) })
	usernsPath := sbRec.Namespace[string(podns.User)]
	if usernsPath != "" {
		uid, gid := sbRec.UserNS.hostRoot()
		err = mountOverlayIDMapped(lowers, filepath.Join(rootDir, "upper"), filepath.Join(rootDir, "work"), rootfs, usernsPath, uid, gid)
	} else {
		err = mountOverlay(lowers, filepath.Join(rootDir, "upper"), filepath.Join(rootDir, "work"), rootfs)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "container rootfs: %v", err)
	}
	volumes, err := s.mountImageVolumes(id, cfg, volumeImages, usernsPath, undo)
	if err != nil {
		return nil, err
	}
	volumeSources := make(map[int]string, len(volumes))
	for _, v := range volumes {
		volumeSources[v.Mount] = v.Source
	}

	in := spec.Input{
		ID:             id,
		Config:         cfg,
		Sandbox:        sandboxCfg,
		SandboxID:      sbRec.ID,
		Image:          img.Config,
		ImageName:      cfg.GetImage().GetImage(),
		Rootfs:         rootfs,
		ImageVolumes:   volumeSources,
		CgroupsPath:    s.cgroups.containerPath(sbRec.Cgroup, id),
		Hostname:       sbRec.Hostname,
		OOMScoreAdjMin: s.oomMin,
		Namespaces: spec.Namespaces{
			Network: sbRec.Namespace[string(podns.Net)],
			IPC:     sbRec.Namespace[string(podns.IPC)],
			UTS:     sbRec.Namespace[string(podns.UTS)],
			PID:     pidNS,
			HostPID: hostPID,
			User:    sbRec.Namespace[string(podns.User)],
		},
		Note: func(msg string) { s.log.Info(msg, "container", id) },
		Files: spec.SandboxFiles{
			Hosts:    filepath.Join(s.paths.sandboxRoot(sbRec.ID), "hosts"),
			Resolv:   filepath.Join(s.paths.sandboxRoot(sbRec.ID), "resolv.conf"),
			Hostname: filepath.Join(s.paths.sandboxRoot(sbRec.ID), "hostname"),
			Shm:      sbRec.Shm,
		},
	}
	if u := sbRec.UserNS; u != nil {
		in.Namespaces.UIDMappings, in.Namespaces.GIDMappings = u.UIDs, u.GIDs
	}
	ociSpec, err := spec.Generate(in)
	var fe *spec.FieldError
	if errors.As(err, &fe) {
		field := fe.Field
		if !strings.HasPrefix(field, "sandbox_config") && !strings.HasPrefix(field, "config") {
			field = "config." + field
		}
		return nil, invalid(field, "%v", fe.Err)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "generate OCI spec: %v", err)
	}
	if err := ensureMountSources(ociSpec); err != nil {
		return nil, invalid("config.mounts", "%v", err)
	}
	data, err := json.Marshal(ociSpec)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode OCI spec: %v", err)
	}
	if err := os.WriteFile(filepath.Join(s.paths.bundle(id), "config.json"), data, 0o600); err != nil {
		return nil, status.Errorf(codes.Internal, "write OCI spec: %v", err)
	}

	rec := &containerRecord{
		ID:         id,
		SandboxID:  sbRec.ID,
		Config:     cfg,
		ImageID:    img.ID,
		ImageRef:   imageRef(img),
		ImageName:  imageName(img, cfg.GetImage().GetImage()),
		Layers:     img.Layers,
		State:      runtime.ContainerState_CONTAINER_CREATED,
		CreatedAt:  time.Now().UnixNano(),
		OwnPidNS:   ownsPidNamespace(ociSpec),
		StopSignal: containerStopSignal(cfg, img.Config.StopSignal),
		User:       containerUser(ociSpec),

		ImageVolumes: volumes,
	}
	if dir, p := sandboxCfg.GetLogDirectory(), cfg.GetLogPath(); dir != "" && p != "" {
		rec.LogPath = filepath.Join(dir, p)
	}
	if err := writeContainerRecord(s.paths.containerRecord(id), rec); err != nil {
		return nil, status.Errorf(codes.Internal, "save container: %v", err)
	}
	s.objs.addContainer(newContainer(rec))
	undo.disarm()
	s.log.Info("container created", "container", id, "sandbox", sbRec.ID, "name", cfg.GetMetadata().GetName(), "image", img.ID)
	s.emit(id, sbRec.ID, runtime.ContainerEventType_CONTAINER_CREATED_EVENT)
	return &runtime.CreateContainerResponse{ContainerId: id}, nil
}

// imageRef is the image reference a container status reports: the repo digest when
// the image has one, as containerd does, else the image id.
func imageRef(img image.Image) string {
	if len(img.RepoDigests) > 0 {
		return img.RepoDigests[0]
	}
	return img.ID
}

// imageName is the name a container status shows for its image.
func imageName(img image.Image, requested string) string {
	if len(img.RepoTags) > 0 {
		return img.RepoTags[0]
	}
	return requested
}

func ownsPidNamespace(sp *specs.Spec) bool {
	if sp.Linux == nil {
		return false
	}
	for _, ns := range sp.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			return ns.Path == ""
		}
	}
	return false
}

func containerUser(sp *specs.Spec) *runtime.ContainerUser {
	if sp.Process == nil {
		return nil
	}
	u := sp.Process.User
	groups := make([]int64, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int64(g))
	}
	return &runtime.ContainerUser{Linux: &runtime.LinuxContainerUser{
		Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups,
	}}
}

// ensureMountSources creates missing bind mount sources, as containerd does, so a
// hostPath directory that does not exist yet becomes an empty directory.
func ensureMountSources(sp *specs.Spec) error {
	for _, m := range sp.Mounts {
		if m.Type != "bind" && !hasOption(m.Options, "bind") && !hasOption(m.Options, "rbind") {
			continue
		}
		if _, err := os.Stat(m.Source); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}
