package cri

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
	"github.com/nodekit-dev/nodekit/cri/runc"
	"github.com/nodekit-dev/nodekit/cri/spec"
)

// UpdateContainerResources changes a container's CPU and memory settings. The
// request's non-zero fields replace the container's; the result is validated as
// CreateContainer validates, applied live with `runc update` when the container
// runs, and written to its bundle's config.json (so a created container starts
// with it) and its record (so ContainerStatus reports it), as containerd does.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtime.UpdateContainerResourcesRequest) (*runtime.UpdateContainerResourcesResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("container_id", "empty")
	}
	c, err := s.objs.container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if req.GetLinux() == nil {
		return &runtime.UpdateContainerResourcesResponse{}, nil // nothing for Linux
	}
	c.op.Lock()
	defer c.op.Unlock()
	rec := c.snapshot()

	merged := mergeResources(rec.Config.GetLinux().GetResources(), req.GetLinux())
	res, err := spec.Resources(merged, nil)
	var fe *spec.FieldError
	if errors.As(err, &fe) {
		return nil, invalid("linux."+strings.TrimPrefix(fe.Field, "linux.resources."), "%v", fe.Err)
	}
	if err != nil {
		return nil, grpcError(codes.Internal, err, "container %s resources", rec.ID)
	}
	sp, err := s.specOf(rec.ID)
	if err != nil {
		return nil, grpcError(codes.Internal, err, "container %s: read OCI spec", rec.ID)
	}
	if sp.Linux == nil {
		sp.Linux = &specs.Linux{}
	}
	if sp.Linux.Resources == nil {
		sp.Linux.Resources = &specs.LinuxResources{}
	}
	r := sp.Linux.Resources
	r.CPU, r.Memory, r.HugepageLimits, r.Unified = res.CPU, res.Memory, res.HugepageLimits, res.Unified

	if rec.State == runtime.ContainerState_CONTAINER_RUNNING {
		// runc update changes what the request can change; devices and pids stay.
		live, err := json.Marshal(&specs.LinuxResources{CPU: res.CPU, Memory: res.Memory, Unified: res.Unified})
		if err != nil {
			return nil, grpcError(codes.Internal, err, "encode resources")
		}
		// A container that exited meanwhile (its exit may not be recorded yet) just
		// keeps the new spec.
		err = s.oci.Update(ctx, rec.ID, live)
		if err != nil && !errors.Is(err, runc.ErrNotExist) && !errors.Is(err, runc.ErrNotRunning) {
			if now := c.snapshot(); now.State == runtime.ContainerState_CONTAINER_RUNNING {
				return nil, grpcError(codes.Unknown, err, "update container %s", rec.ID)
			}
		}
	}

	data, err := json.Marshal(sp)
	if err != nil {
		return nil, grpcError(codes.Internal, err, "encode OCI spec")
	}
	if err := atomicfile.Replace(filepath.Join(s.paths.bundle(rec.ID), "config.json"), data, 0o600); err != nil {
		return nil, grpcError(codes.Internal, err, "container %s: write OCI spec", rec.ID)
	}
	cfg := proto.Clone(rec.Config).(*runtime.ContainerConfig)
	if cfg.Linux == nil {
		cfg.Linux = &runtime.LinuxContainerConfig{}
	}
	cfg.Linux.Resources = merged
	if _, err := s.updateContainer(c, func(r *containerRecord) bool { r.Config = cfg; return true }); err != nil {
		return nil, grpcError(codes.Internal, err, "update container %s", rec.ID)
	}
	s.log.Info("container resources updated", "container", rec.ID, "running", rec.State == runtime.ContainerState_CONTAINER_RUNNING)
	return &runtime.UpdateContainerResourcesResponse{}, nil
}

// mergeResources returns old with the non-zero fields of update applied. A new
// memory limit without a swap limit drops the old swap limit, so swap follows
// the limit (no swap) as at create. The OOM score of a created process cannot
// change and is kept.
func mergeResources(old, update *runtime.LinuxContainerResources) *runtime.LinuxContainerResources {
	out := &runtime.LinuxContainerResources{}
	if old != nil {
		out = proto.Clone(old).(*runtime.LinuxContainerResources)
	}
	if v := update.GetCpuPeriod(); v != 0 {
		out.CpuPeriod = v
	}
	if v := update.GetCpuQuota(); v != 0 {
		out.CpuQuota = v
	}
	if v := update.GetCpuShares(); v != 0 {
		out.CpuShares = v
	}
	if v := update.GetCpusetCpus(); v != "" {
		out.CpusetCpus = v
	}
	if v := update.GetCpusetMems(); v != "" {
		out.CpusetMems = v
	}
	if v := update.GetMemoryLimitInBytes(); v != 0 {
		out.MemoryLimitInBytes = v
		out.MemorySwapLimitInBytes = 0
	}
	if v := update.GetMemorySwapLimitInBytes(); v != 0 {
		out.MemorySwapLimitInBytes = v
	}
	if h := update.GetHugepageLimits(); len(h) > 0 {
		out.HugepageLimits = nil
		for _, l := range h {
			out.HugepageLimits = append(out.HugepageLimits, proto.Clone(l).(*runtime.HugepageLimit))
		}
	}
	if u := update.GetUnified(); len(u) > 0 {
		if out.Unified == nil {
			out.Unified = map[string]string{}
		}
		maps.Copy(out.Unified, u)
	}
	return out
}
