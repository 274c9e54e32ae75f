package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestGenerateImageVolumes(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	image := func(ref string) *runtime.ImageSpec { return &runtime.ImageSpec{Image: ref} }
	runCases(t, rootfs, []genCase{
		{name: "image volumes are read-only private binds of what the caller mounted", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{
				{ContainerPath: "/data", HostPath: "/srv/data"},
				{ContainerPath: "/vol/", Image: image("docker.io/library/data:1")}, // readonly unset
				{ContainerPath: "/sub", Image: image("sha256:0123"), ImageSubPath: "a/b", Readonly: true,
					Propagation: runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL, MountOptions: []string{"noexec"},
					UidMappings: []*runtime.IDMapping{{HostId: 1000, Length: 1}}, GidMappings: []*runtime.IDMapping{{HostId: 1000, Length: 1}}},
			}
			in.ImageVolumes = map[int]string{1: "/state/c/image-volumes/1", 2: "/state/c/image-volumes/2/a/b"}
		}, check: func(t *testing.T, s *specs.Spec) {
			for dst, src := range map[string]string{"/vol": "/state/c/image-volumes/1", "/sub": "/state/c/image-volumes/2/a/b"} {
				wantMount(t, s, dst, "bind", src, "rbind", "rprivate", "ro")
				m, _ := mountAt(s, dst)
				if m.Options[len(m.Options)-1] != "ro" || slices.Contains(m.Options, "rw") || slices.Contains(m.Options, "rshared") {
					t.Errorf("image volume %s options %q: want private and \"ro\" last", dst, m.Options)
				}
				if len(m.UIDMappings)+len(m.GIDMappings) != 0 {
					t.Errorf("image volume %s is id-mapped by the runtime: %v %v", dst, m.UIDMappings, m.GIDMappings)
				}
			}
			wantMount(t, s, "/sub", "bind", "/state/c/image-volumes/2/a/b", "noexec")
			wantMount(t, s, "/data", "bind", "/srv/data", "rw")
			if s.Linux.RootfsPropagation == "rshared" {
				t.Error("an image volume's propagation made the rootfs shared")
			}
		}},
		{name: "image volume with a host path", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/vol", HostPath: "/srv", Image: image("data:1")}}
			in.ImageVolumes = map[int]string{0: "/state/c/image-volumes/0"}
		}, wantField: "mounts[0].host_path"},
		{name: "image volume not mounted by the caller", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/vol", Image: image("data:1")}}
		}, wantField: "mounts[0].image"},
		{name: "image volume made writable by an option", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/vol", Image: image("data:1"), MountOptions: []string{"nosuid", "rw"}}}
			in.ImageVolumes = map[int]string{0: "/state/c/image-volumes/0"}
		}, wantField: "mounts[0].mount_options[1]"},
		{name: "empty image spec is a host path mount", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/vol", HostPath: "/srv", Image: &runtime.ImageSpec{}}}
		}, check: func(t *testing.T, s *specs.Spec) {
			wantMount(t, s, "/vol", "bind", "/srv", "rw")
		}},
	})
}
