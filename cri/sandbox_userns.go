package cri

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/podns"
)

// A pod may ask for a user namespace of its own (namespace_options.userns_options
// mode POD, with one uid and one gid mapping, as the kubelet sends for
// hostUsers: false). The pod's infra process creates it, and inside it the pod's
// network, IPC, UTS and PID namespaces, so that root in the pod's containers has
// privileges over them and over nothing of the node's. Containers join it by its
// pinned file. Their rootfs is an overlay of id-mapped layers (see
// mountOverlayIDMapped): the image's root-owned files belong to the container's
// root, and the layers on disk stay shared with every other pod. Bind mounts
// with id mappings (the kubelet's volumes of such pods) become id-mapped mounts.

// podUserns is a pod's user namespace maps, as recorded.
type podUserns struct {
	UIDs []specs.LinuxIDMapping `json:"uids"`
	GIDs []specs.LinuxIDMapping `json:"gids"`
}

// minUsernsIDs is the least a pod's mapping must cover: the infra process runs
// as uid and gid 65535 inside it.
const minUsernsIDs = 65536

// podUserNamespace validates a pod's user namespace options; nil means the pod
// uses the host's.
func podUserNamespace(cfg *runtime.PodSandboxConfig) (*podUserns, error) {
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	u := nsOpts.GetUsernsOptions()
	const field = "config.linux.security_context.namespace_options.userns_options"
	switch {
	case u == nil || u.GetMode() == runtime.NamespaceMode_NODE:
		return nil, nil
	case u.GetMode() != runtime.NamespaceMode_POD:
		return nil, invalid(field+".mode", "%s: a pod has a user namespace of its own (POD) or uses the host's (NODE)", u.GetMode())
	case nsOpts.GetNetwork() == runtime.NamespaceMode_NODE, nsOpts.GetIpc() == runtime.NamespaceMode_NODE, nsOpts.GetPid() == runtime.NamespaceMode_NODE:
		return nil, invalid(field+".mode", "a pod in a user namespace cannot use the host's network, IPC or PID namespace")
	}
	uids, err := usernsMapping(field+".uids", u.GetUids())
	if err != nil {
		return nil, err
	}
	gids, err := usernsMapping(field+".gids", u.GetGids())
	if err != nil {
		return nil, err
	}
	return &podUserns{UIDs: uids, GIDs: gids}, nil
}

func usernsMapping(field string, maps []*runtime.IDMapping) ([]specs.LinuxIDMapping, error) {
	if len(maps) != 1 {
		return nil, invalid(field, "want exactly one mapping, got %d", len(maps))
	}
	m := maps[0]
	switch {
	case m.GetContainerId() != 0:
		return nil, invalid(field, "the mapping must start at id 0 in the container, not %d", m.GetContainerId())
	case m.GetHostId() == 0:
		return nil, invalid(field, "the mapping must not map the container's root to the node's root")
	case m.GetLength() < minUsernsIDs:
		return nil, invalid(field, "the mapping covers %d ids; at least %d are needed", m.GetLength(), minUsernsIDs)
	case uint64(m.GetHostId())+uint64(m.GetLength()) >= 1<<32:
		return nil, invalid(field, "the mapping %d+%d overflows the id range", m.GetHostId(), m.GetLength())
	}
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.GetHostId(), Size: m.GetLength()}}, nil
}

// adoptUserns pins the user, network, IPC and UTS namespaces the infra process
// pid created, sets the pod's hostname and brings loopback up.
func (s *Server) adoptUserns(rec *sandboxRecord, pid int, undo *cleanups) error {
	nsDir := s.paths.sandboxNS(rec.ID)
	undo.add(func() error { return podns.Unpin(nsDir) })
	pinned, err := podns.Adopt(podns.Options{
		Dir:      nsDir,
		Kinds:    []podns.Kind{podns.User, podns.Net, podns.IPC, podns.UTS},
		Hostname: rec.Hostname,
	}, pid)
	if err != nil {
		return status.Errorf(codes.Internal, "pod user namespace: %v", err)
	}
	if rec.Namespace == nil {
		rec.Namespace = map[string]string{}
	}
	for k, p := range pinned {
		rec.Namespace[string(k)] = p
	}
	return nil
}

// hostRoot returns the node's ids of root in the user namespace, for the owner
// of a container's writable layer.
func (u *podUserns) hostRoot() (uid, gid int) {
	return int(u.UIDs[0].HostID), int(u.GIDs[0].HostID)
}
