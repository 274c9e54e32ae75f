package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Destinations of the pod files.
const (
	etcHosts    = "/etc/hosts"
	etcResolv   = "/etc/resolv.conf"
	etcHostname = "/etc/hostname"
	devShm      = "/dev/shm"
)

// defaultMounts are the filesystems every container gets (containerd's set
// without /run, plus the cgroup filesystem). /dev/shm is added by podMounts.
func defaultMounts(privileged bool) []specs.Mount {
	mode := "ro"
	if privileged {
		mode = "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", mode}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", mode}},
	}
}

// podMounts are the pod's files: /etc/hosts, /etc/resolv.conf and
// /etc/hostname (read-only when the rootfs is, like containerd), and /dev/shm:
// the host's when the pod shares the host's IPC namespace, else the pod's
// directory, else a private tmpfs.
func podMounts(in Input) []specs.Mount {
	ro := in.Config.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	var out []specs.Mount
	for _, f := range []struct{ dst, src string }{
		{etcHostname, in.Files.Hostname},
		{etcHosts, in.Files.Hosts},
		{etcResolv, in.Files.Resolv},
	} {
		if f.src != "" {
			out = append(out, bindMount(f.src, f.dst, ro, "rprivate"))
		}
	}
	switch {
	case in.Namespaces.IPC == "":
		out = append(out, bindMount(devShm, devShm, false, "rprivate"))
	case in.Files.Shm != "":
		out = append(out, bindMount(in.Files.Shm, devShm, false, "rprivate"))
	default:
		out = append(out, specs.Mount{Destination: devShm, Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
	}
	return out
}

func bindMount(src, dst string, ro bool, propagation string) specs.Mount {
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", propagation, mode}}
}

// setMounts lays out the mounts: the defaults first, minus any a requested
// mount replaces (and everything under /dev when /dev itself is requested),
// then the request's mounts and the pod files they do not replace, sorted by
// depth so a parent is mounted before its children.
func setMounts(s *specs.Spec, in Input) error {
	var (
		requested []specs.Mount
		taken     = map[string]bool{}
	)
	for i, m := range in.Config.GetMounts() {
		om, err := userMount(s, i, m, in.ImageVolumes)
		if err != nil {
			return err
		}
		requested = append(requested, om)
		taken[om.Destination] = true
	}
	for _, m := range podMounts(in) {
		if !taken[m.Destination] {
			requested = append(requested, m)
			taken[m.Destination] = true
		}
	}
	slices.SortStableFunc(requested, func(a, b specs.Mount) int {
		return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
	})

	privileged := in.Config.GetLinux().GetSecurityContext().GetPrivileged()
	var mounts []specs.Mount
	for _, m := range defaultMounts(privileged) {
		if taken[m.Destination] || (taken["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		mounts = append(mounts, m)
	}
	s.Mounts = append(mounts, requested...)
	return nil
}

// userMount converts the request's i-th mount to a bind mount, and records
// the root propagation a shared or slave mount needs. An image volume is bound
// from the path imageVolumes gives for i.
func userMount(s *specs.Spec, i int, m *runtime.Mount, imageVolumes map[int]string) (specs.Mount, error) {
	field := fmt.Sprintf("mounts[%d]", i)
	dst := m.GetContainerPath()
	if !path.IsAbs(dst) {
		return specs.Mount{}, fieldErr(field+".container_path", "%q is not an absolute path", dst)
	}
	if m.GetImage().GetImage() != "" {
		return imageVolumeMount(field, i, m, imageVolumes)
	}
	if m.GetHostPath() == "" {
		return specs.Mount{}, fieldErr(field+".host_path", "host_path is required")
	}
	var uids, gids []specs.LinuxIDMapping
	if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
		// An id-mapped mount (for a container in a user namespace): files of
		// host id H appear with the container id the mapping gives H.
		if len(m.GetUidMappings()) == 0 || len(m.GetGidMappings()) == 0 {
			return specs.Mount{}, fieldErr(field+".uidMappings", "an id-mapped mount needs both uid and gid mappings")
		}
		uids, gids = idMappings(m.GetUidMappings()), idMappings(m.GetGidMappings())
	}
	opts := []string{"rbind"}
	switch m.GetPropagation() {
	case runtime.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts = append(opts, "rslave")
		if s.Linux.RootfsPropagation != "rshared" {
			s.Linux.RootfsPropagation = "rslave"
		}
	case runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts = append(opts, "rshared")
		s.Linux.RootfsPropagation = "rshared"
	default:
		return specs.Mount{}, fieldErr(field+".propagation", "unknown propagation %d", m.GetPropagation())
	}
	switch {
	case m.GetRecursiveReadOnly() && !m.GetReadonly():
		return specs.Mount{}, fieldErr(field+".recursive_read_only", "recursive read-only needs readonly")
	case m.GetRecursiveReadOnly() && m.GetPropagation() != runtime.MountPropagation_PROPAGATION_PRIVATE:
		return specs.Mount{}, fieldErr(field+".recursive_read_only", "recursive read-only needs private propagation, got %s", m.GetPropagation())
	case m.GetRecursiveReadOnly():
		opts = append(opts, "rro")
	case m.GetReadonly():
		opts = append(opts, "ro")
	default:
		opts = append(opts, "rw")
	}
	for j, o := range m.GetMountOptions() {
		if o == "" || strings.Contains(o, ",") {
			return specs.Mount{}, fieldErr(fmt.Sprintf("%s.mount_options[%d]", field, j), "%q is not a single mount option", o)
		}
		opts = append(opts, o)
	}
	return specs.Mount{Destination: path.Clean(dst), Type: "bind", Source: m.GetHostPath(), Options: opts, UIDMappings: uids, GIDMappings: gids}, nil
}

// imageVolumeMount is the bind mount of an image volume (a mount with image
// set, KEP-4639) that the caller mounted at imageVolumes[i]. It is read-only
// whatever readonly says, as in containerd and CRI-O ("ro" comes last, after
// the request's mount options, and "rw" is refused), and private: an image has
// nothing to propagate. It has no id mappings of its own: for a pod in a user
// namespace the caller id-maps the image's layers. noexec is not added.
func imageVolumeMount(field string, i int, m *runtime.Mount, imageVolumes map[int]string) (specs.Mount, error) {
	if m.GetHostPath() != "" {
		return specs.Mount{}, fieldErr(field+".host_path", "%q is set on a mount of an image (%s.image); an image volume has no host path", m.GetHostPath(), field)
	}
	src, ok := imageVolumes[i]
	if !ok || src == "" {
		return specs.Mount{}, fieldErr(field+".image", "the image volume was not mounted (Input.ImageVolumes has no path for it)")
	}
	opts := []string{"rbind", "rprivate"}
	for j, o := range m.GetMountOptions() {
		switch {
		case o == "" || strings.Contains(o, ","):
			return specs.Mount{}, fieldErr(fmt.Sprintf("%s.mount_options[%d]", field, j), "%q is not a single mount option", o)
		case o == "rw":
			return specs.Mount{}, fieldErr(fmt.Sprintf("%s.mount_options[%d]", field, j), "an image volume is always read-only")
		}
		opts = append(opts, o)
	}
	opts = append(opts, "ro")
	return specs.Mount{Destination: path.Clean(m.GetContainerPath()), Type: "bind", Source: src, Options: opts}, nil
}

// idMappings converts CRI id mappings to the runtime-spec's.
func idMappings(in []*runtime.IDMapping) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, 0, len(in))
	for _, m := range in {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out
}
