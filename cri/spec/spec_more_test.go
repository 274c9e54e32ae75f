package spec

import (
	"errors"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestGenerateMounts(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	runCases(t, rootfs, []genCase{
		{name: "standard mounts and pod files", check: func(t *testing.T, s *specs.Spec) {
			wantMount(t, s, "/proc", "proc", "proc", "nosuid", "noexec", "nodev")
			wantMount(t, s, "/dev", "tmpfs", "tmpfs", "nosuid", "mode=755")
			wantMount(t, s, "/dev/pts", "devpts", "devpts", "newinstance", "ptmxmode=0666", "gid=5")
			wantMount(t, s, "/dev/mqueue", "mqueue", "mqueue")
			wantMount(t, s, "/sys", "sysfs", "sysfs", "ro")
			wantMount(t, s, "/sys/fs/cgroup", "cgroup", "cgroup", "ro")
			wantMount(t, s, "/dev/shm", "bind", "/pod/shm", "rbind", "rw")
			wantMount(t, s, "/etc/hosts", "bind", "/pod/hosts", "rbind", "rprivate", "rw")
			wantMount(t, s, "/etc/resolv.conf", "bind", "/pod/resolv.conf", "rbind", "rw")
			wantMount(t, s, "/etc/hostname", "bind", "/pod/hostname", "rbind", "rw")
			if _, ok := mountAt(s, "/run"); ok {
				t.Error("unexpected /run mount")
			}
		}},
		{name: "host IPC uses the host's /dev/shm", mutate: func(in *Input) {
			in.Namespaces.IPC = ""
		}, check: func(t *testing.T, s *specs.Spec) {
			wantMount(t, s, "/dev/shm", "bind", "/dev/shm", "rbind", "rw")
		}},
		{name: "no pod shm dir: private tmpfs, no pod files", mutate: func(in *Input) {
			in.Files = SandboxFiles{}
		}, check: func(t *testing.T, s *specs.Spec) {
			wantMount(t, s, "/dev/shm", "tmpfs", "shm", "mode=1777")
			for _, d := range []string{"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"} {
				if _, ok := mountAt(s, d); ok {
					t.Errorf("unexpected mount at %s", d)
				}
			}
		}},
		{name: "readonly rootfs makes the pod files read-only", mutate: func(in *Input) {
			sc(in).ReadonlyRootfs = true
		}, check: func(t *testing.T, s *specs.Spec) {
			if !s.Root.Readonly {
				t.Error("root not read-only")
			}
			wantMount(t, s, "/etc/hosts", "bind", "/pod/hosts", "ro")
			wantMount(t, s, "/dev/shm", "bind", "/pod/shm", "rw")
		}},
		{name: "user mount read-write and read-only", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{
				{ContainerPath: "/data", HostPath: "/srv/data"},
				{ContainerPath: "/config/", HostPath: "/srv/config", Readonly: true, MountOptions: []string{"noexec"}},
			}
		}, check: func(t *testing.T, s *specs.Spec) {
			wantMount(t, s, "/data", "bind", "/srv/data", "rbind", "rprivate", "rw")
			wantMount(t, s, "/config", "bind", "/srv/config", "rbind", "rprivate", "ro", "noexec")
			if s.Linux.RootfsPropagation != "" {
				t.Errorf("rootfsPropagation = %q, want unset", s.Linux.RootfsPropagation)
			}
		}},
		{name: "propagation host-to-container is rslave", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/m", HostPath: "/mnt", Propagation: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}}
		}, check: func(t *testing.T, s *specs.Spec) {
			wantMount(t, s, "/m", "bind", "/mnt", "rslave")
			if s.Linux.RootfsPropagation != "rslave" {
				t.Errorf("rootfsPropagation = %q, want rslave", s.Linux.RootfsPropagation)
			}
		}},
		{name: "propagation bidirectional is rshared", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{
				{ContainerPath: "/b", HostPath: "/mnt/b", Propagation: runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL},
				{ContainerPath: "/s", HostPath: "/mnt/s", Propagation: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			}
		}, check: func(t *testing.T, s *specs.Spec) {
			wantMount(t, s, "/b", "bind", "/mnt/b", "rshared")
			if s.Linux.RootfsPropagation != "rshared" {
				t.Errorf("rootfsPropagation = %q, want rshared", s.Linux.RootfsPropagation)
			}
		}},
		{name: "bad propagation", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/a", HostPath: "/a"}, {ContainerPath: "/m", HostPath: "/mnt", Propagation: 7}}
		}, wantField: "mounts[1].propagation"},
		{name: "relative container path", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "data", HostPath: "/srv/data"}}
		}, wantField: "mounts[0].container_path"},
		{name: "missing host path", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/data"}}
		}, wantField: "mounts[0].host_path"},
		{name: "recursive read-only", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/r", HostPath: "/r", Readonly: true, RecursiveReadOnly: true}}
		}, check: func(t *testing.T, s *specs.Spec) {
			wantMount(t, s, "/r", "bind", "/r", "rro")
		}},
		{name: "recursive read-only needs readonly", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/r", HostPath: "/r", RecursiveReadOnly: true}}
		}, wantField: "mounts[0].recursive_read_only"},
		{name: "user mount over /etc/hosts replaces the pod file", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/etc/hosts", HostPath: "/kubelet/etc-hosts"}}
		}, check: func(t *testing.T, s *specs.Spec) {
			n := 0
			for _, m := range s.Mounts {
				if m.Destination == "/etc/hosts" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d mounts at /etc/hosts, want 1", n)
			}
			wantMount(t, s, "/etc/hosts", "bind", "/kubelet/etc-hosts")
		}},
		{name: "user /dev replaces every default under /dev", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/dev", HostPath: "/dev"}}
		}, check: func(t *testing.T, s *specs.Spec) {
			for _, d := range []string{"/dev/pts", "/dev/mqueue"} {
				if _, ok := mountAt(s, d); ok {
					t.Errorf("default %s kept under a user /dev", d)
				}
			}
			wantMount(t, s, "/dev", "bind", "/dev")
			wantMount(t, s, "/dev/shm", "bind", "/pod/shm")
		}},
		{name: "parents mounted before children", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{
				{ContainerPath: "/a/b/c", HostPath: "/h/c"},
				{ContainerPath: "/etc", HostPath: "/h/etc"},
				{ContainerPath: "/a", HostPath: "/h/a"},
				{ContainerPath: "/a/b", HostPath: "/h/b"},
			}
		}, check: func(t *testing.T, s *specs.Spec) {
			pos := map[string]int{}
			for i, m := range s.Mounts {
				pos[m.Destination] = i
			}
			for _, pair := range [][2]string{{"/a", "/a/b"}, {"/a/b", "/a/b/c"}, {"/etc", "/etc/hosts"}, {"/dev", "/dev/shm"}, {"/sys", "/sys/fs/cgroup"}} {
				if pos[pair[0]] >= pos[pair[1]] {
					t.Errorf("%s mounted at %d, after its child %s at %d: %v", pair[0], pos[pair[0]], pair[1], pos[pair[1]], destinations(s))
				}
			}
		}},
	})
}

func TestGenerateCapabilities(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	caps := func(want ...string) func(*testing.T, *specs.Spec) {
		return func(t *testing.T, s *specs.Spec) {
			t.Helper()
			c := s.Process.Capabilities
			for what, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			if len(c.Ambient) != 0 || len(c.Inheritable) != 0 {
				t.Errorf("ambient %q inheritable %q, want none", c.Ambient, c.Inheritable)
			}
		}
	}
	with := func(add, drop []string) func(*Input) {
		return func(in *Input) {
			sc(in).Capabilities = &runtime.Capability{AddCapabilities: add, DropCapabilities: drop}
			in.Host.Capabilities = []string{"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"}
		}
	}
	runCases(t, rootfs, []genCase{
		{name: "default set", check: caps(DefaultCapabilities...)},
		{name: "Input default set", mutate: func(in *Input) {
			in.DefaultCapabilities = []string{"kill", "CAP_CHOWN"}
		}, check: caps("CAP_KILL", "CAP_CHOWN")},
		{name: "add and drop, with and without CAP_", mutate: with([]string{"NET_ADMIN", "CAP_SYS_TIME", "net_raw"}, []string{"CAP_CHOWN", "kill"}),
			check: caps("CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_NET_RAW")},
		{name: "add ALL grants what the runtime holds", mutate: with([]string{"ALL"}, nil), check: caps("CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN")},
		{name: "add ALL then drop one", mutate: with([]string{"all"}, []string{"SYS_ADMIN"}), check: caps("CAP_CHOWN", "CAP_KILL")},
		{name: "drop ALL then add one", mutate: with([]string{"NET_BIND_SERVICE"}, []string{"ALL"}), check: caps("CAP_NET_BIND_SERVICE")},
		{name: "drop ALL", mutate: with(nil, []string{"ALL"}), check: caps()},
		{name: "ALL without host capabilities is every known one", mutate: func(in *Input) {
			sc(in).Capabilities = &runtime.Capability{AddCapabilities: []string{"ALL"}}
		}, check: caps(knownCapabilities...)},
		{name: "ambient capabilities", mutate: func(in *Input) {
			sc(in).Capabilities = &runtime.Capability{DropCapabilities: []string{"ALL"}, AddAmbientCapabilities: []string{"NET_BIND_SERVICE"}}
		}, check: func(t *testing.T, s *specs.Spec) {
			c := s.Process.Capabilities
			for what, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted, "inheritable": c.Inheritable, "ambient": c.Ambient} {
				equal(t, what, got, []string{"CAP_NET_BIND_SERVICE"})
			}
		}},
		{name: "unknown capability to add", mutate: with([]string{"CHOWN", "FLY"}, nil), wantField: "linux.security_context.capabilities.add_capabilities[1]"},
		{name: "unknown capability to drop", mutate: with(nil, []string{"CAP_NOPE"}), wantField: "linux.security_context.capabilities.drop_capabilities[0]"},
	})
}

func TestGenerateSecurityPaths(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	runCases(t, rootfs, []genCase{
		{name: "default masked and read-only paths", check: func(t *testing.T, s *specs.Spec) {
			equal(t, "masked", s.Linux.MaskedPaths, DefaultMaskedPaths)
			equal(t, "readonly", s.Linux.ReadonlyPaths, DefaultReadonlyPaths)
		}},
		{name: "paths from the config", mutate: func(in *Input) {
			sc(in).MaskedPaths = []string{"/proc/kcore", "/proc/keys"}
			sc(in).ReadonlyPaths = []string{"/proc/sys"}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "masked", s.Linux.MaskedPaths, []string{"/proc/kcore", "/proc/keys"})
			equal(t, "readonly", s.Linux.ReadonlyPaths, []string{"/proc/sys"})
		}},
		{name: "user namespace POD without a pod user namespace", mutate: func(in *Input) {
			sc(in).NamespaceOptions = &runtime.NamespaceOption{UsernsOptions: &runtime.UserNamespace{Mode: runtime.NamespaceMode_POD}}
		}, wantField: "linux.security_context.namespace_options.userns_options.mode"},
		{name: "user namespace CONTAINER refused", mutate: func(in *Input) {
			in.Namespaces.User = "/run/pod/ns/user"
			sc(in).NamespaceOptions = &runtime.NamespaceOption{UsernsOptions: &runtime.UserNamespace{Mode: runtime.NamespaceMode_CONTAINER}}
		}, wantField: "linux.security_context.namespace_options.userns_options.mode"},
		{name: "host user namespace in a pod that has one refused", mutate: func(in *Input) {
			in.Namespaces.User = "/run/pod/ns/user"
		}, wantField: "linux.security_context.namespace_options.userns_options.mode"},
		{name: "privileged in a user namespace refused", mutate: func(in *Input) {
			in.Namespaces.User = "/run/pod/ns/user"
			sc(in).Privileged = true
			sc(in).NamespaceOptions = &runtime.NamespaceOption{UsernsOptions: &runtime.UserNamespace{Mode: runtime.NamespaceMode_POD}}
		}, wantField: "linux.security_context.privileged"},
		{name: "user namespace POD joins the pod's, with its maps", mutate: func(in *Input) {
			in.Namespaces.User = "/run/pod/ns/user"
			in.Namespaces.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			in.Namespaces.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
			sc(in).NamespaceOptions = &runtime.NamespaceOption{UsernsOptions: &runtime.UserNamespace{Mode: runtime.NamespaceMode_POD}}
		}, check: func(t *testing.T, s *specs.Spec) {
			var user string
			for _, ns := range s.Linux.Namespaces {
				if ns.Type == specs.UserNamespace {
					user = ns.Path
				}
			}
			if user != "/run/pod/ns/user" || len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != 100000 || s.Linux.GIDMappings[0].HostID != 200000 {
				t.Errorf("user ns %q, uid maps %v, gid maps %v", user, s.Linux.UIDMappings, s.Linux.GIDMappings)
			}
		}},
		{name: "id-mapped mount", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/data", HostPath: "/srv/data",
				UidMappings: []*runtime.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}},
				GidMappings: []*runtime.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}}}
		}, check: func(t *testing.T, s *specs.Spec) {
			for _, m := range s.Mounts {
				if m.Destination == "/data" {
					if len(m.UIDMappings) != 1 || m.UIDMappings[0].Size != 65536 || len(m.GIDMappings) != 1 {
						t.Errorf("mount maps %v %v", m.UIDMappings, m.GIDMappings)
					}
					return
				}
			}
			t.Error("no /data mount")
		}},
		{name: "id-mapped mount with only uid maps", mutate: func(in *Input) {
			in.Config.Mounts = []*runtime.Mount{{ContainerPath: "/data", HostPath: "/srv/data",
				UidMappings: []*runtime.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}}}
		}, wantField: "mounts[0].uidMappings"},
	})
}

func TestGenerateSysctls(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	sysctls := func(kv map[string]string) func(*Input) {
		return func(in *Input) { sandboxLinux(in).Sysctls = kv }
	}
	runCases(t, rootfs, []genCase{
		{name: "namespaced sysctls in the pod's namespaces", mutate: sysctls(map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "0", "net/ipv4/ping_group_range": "0 0",
			"kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "20", "kernel.domainname": "example",
		}), check: func(t *testing.T, s *specs.Spec) {
			if len(s.Linux.Sysctl) != 5 || s.Linux.Sysctl["net/ipv4/ping_group_range"] != "0 0" || s.Linux.Sysctl["kernel.shm_rmid_forced"] != "1" {
				t.Errorf("sysctl = %v", s.Linux.Sysctl)
			}
		}},
		{name: "net sysctl with host network", mutate: func(in *Input) {
			sysctls(map[string]string{"net.ipv4.ip_forward": "1"})(in)
			in.Namespaces.Network = ""
		}, wantField: `sandbox_config.linux.sysctls["net.ipv4.ip_forward"]`},
		{name: "ipc sysctl with host IPC", mutate: func(in *Input) {
			sysctls(map[string]string{"kernel.shmmax": "1"})(in)
			in.Namespaces.IPC = ""
		}, wantField: `sandbox_config.linux.sysctls["kernel.shmmax"]`},
		{name: "domainname with host UTS", mutate: func(in *Input) {
			sysctls(map[string]string{"kernel/domainname": "x"})(in)
			in.Namespaces.UTS = ""
		}, wantField: `sandbox_config.linux.sysctls["kernel/domainname"]`},
		{name: "sysctl no namespace scopes", mutate: sysctls(map[string]string{"vm.swappiness": "1"}),
			wantField: `sandbox_config.linux.sysctls["vm.swappiness"]`},
		{name: "hostname sysctl", mutate: sysctls(map[string]string{"kernel.hostname": "x"}),
			wantField: `sandbox_config.linux.sysctls["kernel.hostname"]`},
	})
}

func TestGenerateResources(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	runCases(t, rootfs, []genCase{
		{name: "no resources", check: func(t *testing.T, s *specs.Spec) {
			r := s.Linux.Resources
			if r.CPU != nil || r.Memory != nil || r.HugepageLimits != nil || r.Unified != nil {
				t.Errorf("resources = %+v, want only device rules", r)
			}
		}},
		{name: "cpu shares quota period cpuset", mutate: func(in *Input) {
			r := res(in)
			r.CpuShares, r.CpuQuota, r.CpuPeriod = 512, 50000, 100000
			r.CpusetCpus, r.CpusetMems = "0-1,3", "0"
		}, check: func(t *testing.T, s *specs.Spec) {
			c := s.Linux.Resources.CPU
			if c == nil || *c.Shares != 512 || *c.Quota != 50000 || *c.Period != 100000 || c.Cpus != "0-1,3" || c.Mems != "0" {
				t.Errorf("cpu = %+v", c)
			}
		}},
		{name: "cpu quota -1 is no limit", mutate: func(in *Input) {
			res(in).CpuQuota = -1
		}, check: func(t *testing.T, s *specs.Spec) {
			if c := s.Linux.Resources.CPU; c == nil || *c.Quota != -1 || c.Period != nil {
				t.Errorf("cpu = %+v, want quota -1 only", c)
			}
		}},
		{name: "negative cpu quota", mutate: func(in *Input) { res(in).CpuQuota = -2 }, wantField: "linux.resources.cpu_quota"},
		{name: "cpu quota below 1ms", mutate: func(in *Input) { res(in).CpuQuota = 500 }, wantField: "linux.resources.cpu_quota"},
		{name: "cpu period too small", mutate: func(in *Input) { res(in).CpuPeriod = 999 }, wantField: "linux.resources.cpu_period"},
		{name: "cpu period too large", mutate: func(in *Input) { res(in).CpuPeriod = 1000001 }, wantField: "linux.resources.cpu_period"},
		{name: "cpu shares out of range", mutate: func(in *Input) { res(in).CpuShares = 1 }, wantField: "linux.resources.cpu_shares"},
		{name: "bad cpuset", mutate: func(in *Input) { res(in).CpusetCpus = "3-1" }, wantField: "linux.resources.cpuset_cpus"},
		{name: "memory limit sets swap to the same", mutate: func(in *Input) {
			res(in).MemoryLimitInBytes = 64 << 20
		}, check: func(t *testing.T, s *specs.Spec) {
			m := s.Linux.Resources.Memory
			if m == nil || *m.Limit != 64<<20 || m.Swap == nil || *m.Swap != 64<<20 {
				t.Errorf("memory = %+v, want limit = swap = 64Mi", m)
			}
		}},
		{name: "no swap setting without swap accounting", mutate: func(in *Input) {
			res(in).MemoryLimitInBytes = 64 << 20
			in.Host.SwapAccounting = false
		}, check: func(t *testing.T, s *specs.Spec) {
			m := s.Linux.Resources.Memory
			if m == nil || *m.Limit != 64<<20 || m.Swap != nil {
				t.Errorf("memory = %+v, want limit only", m)
			}
		}},
		{name: "explicit swap limit", mutate: func(in *Input) {
			res(in).MemoryLimitInBytes = 64 << 20
			res(in).MemorySwapLimitInBytes = 128 << 20
		}, check: func(t *testing.T, s *specs.Spec) {
			if m := s.Linux.Resources.Memory; m == nil || *m.Swap != 128<<20 {
				t.Errorf("memory = %+v, want swap 128Mi", m)
			}
		}},
		{name: "swap limit below memory limit", mutate: func(in *Input) {
			res(in).MemoryLimitInBytes = 64 << 20
			res(in).MemorySwapLimitInBytes = 32 << 20
		}, wantField: "linux.resources.memory_swap_limit_in_bytes"},
		{name: "memory limit too low", mutate: func(in *Input) { res(in).MemoryLimitInBytes = 4096 }, wantField: "linux.resources.memory_limit_in_bytes"},
		{name: "negative memory limit", mutate: func(in *Input) { res(in).MemoryLimitInBytes = -1 }, wantField: "linux.resources.memory_limit_in_bytes"},
		{name: "hugepage limits", mutate: func(in *Input) {
			res(in).HugepageLimits = []*runtime.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}, {PageSize: "1GB"}}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "hugepages", s.Linux.Resources.HugepageLimits, []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}, {Pagesize: "1GB"}})
		}},
		{name: "hugepage limits dropped without hugetlb", mutate: func(in *Input) {
			res(in).HugepageLimits = []*runtime.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}}
			in.Host.Hugetlb = false
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Resources.HugepageLimits != nil {
				t.Errorf("hugepages = %+v, want none", s.Linux.Resources.HugepageLimits)
			}
		}},
		{name: "bad hugepage size", mutate: func(in *Input) {
			res(in).HugepageLimits = []*runtime.HugepageLimit{{PageSize: "2MB"}, {PageSize: "huge"}}
		}, wantField: "linux.resources.hugepage_limits[1].page_size"},
		{name: "unified on cgroup v2", mutate: func(in *Input) {
			res(in).Unified = map[string]string{"memory.high": "1000000"}
			in.Host.CgroupV2 = true
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Resources.Unified["memory.high"] != "1000000" {
				t.Errorf("unified = %v", s.Linux.Resources.Unified)
			}
		}},
		{name: "unified on cgroup v1", mutate: func(in *Input) {
			res(in).Unified = map[string]string{"memory.high": "1000000"}
		}, wantField: "linux.resources.unified"},
	})
}

func TestGenerateNamespaces(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	pid := func(mode runtime.NamespaceMode, path string) func(*Input) {
		return func(in *Input) {
			sc(in).NamespaceOptions = &runtime.NamespaceOption{Pid: mode, TargetId: "other"}
			in.Namespaces.PID = path
		}
	}
	wantNS := func(want ...specs.LinuxNamespace) func(*testing.T, *specs.Spec) {
		return func(t *testing.T, s *specs.Spec) {
			t.Helper()
			equal(t, "namespaces", s.Linux.Namespaces, want)
		}
	}
	mnt := specs.LinuxNamespace{Type: specs.MountNamespace}
	net := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/p"}
	ipc := specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/run/ipcns/p"}
	uts := specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/run/utsns/p"}
	newPID := specs.LinuxNamespace{Type: specs.PIDNamespace}
	runCases(t, rootfs, []genCase{
		{name: "pod namespaces and a new pid namespace", check: func(t *testing.T, s *specs.Spec) {
			wantNS(mnt, net, ipc, uts, newPID)(t, s)
			if s.Hostname != "podhost" {
				t.Errorf("hostname = %q, want podhost", s.Hostname)
			}
		}},
		{name: "host network, ipc and uts", mutate: func(in *Input) {
			in.Namespaces = Namespaces{}
		}, check: func(t *testing.T, s *specs.Spec) {
			wantNS(mnt, newPID)(t, s)
			if s.Hostname != "" {
				t.Errorf("hostname = %q, want unset in the host's UTS namespace", s.Hostname)
			}
		}},
		{name: "pid NODE is the host's", mutate: pid(runtime.NamespaceMode_NODE, "/run/pidns/p"), check: wantNS(mnt, net, ipc, uts)},
		{name: "pid POD joins the pod's", mutate: pid(runtime.NamespaceMode_POD, "/run/pidns/p"),
			check: wantNS(mnt, net, ipc, uts, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/run/pidns/p"})},
		{name: "pid POD in a pod without a shared one is private", mutate: pid(runtime.NamespaceMode_POD, ""), check: wantNS(mnt, net, ipc, uts, newPID)},
		{name: "pid POD in a host-PID pod is the host's", mutate: func(in *Input) {
			pid(runtime.NamespaceMode_POD, "")(in)
			in.Namespaces.HostPID = true
		}, check: wantNS(mnt, net, ipc, uts)},
		{name: "pid CONTAINER in a host-PID pod stays private", mutate: func(in *Input) {
			pid(runtime.NamespaceMode_CONTAINER, "")(in)
			in.Namespaces.HostPID = true
		}, check: wantNS(mnt, net, ipc, uts, newPID)},
		{name: "pid CONTAINER stays private", mutate: pid(runtime.NamespaceMode_CONTAINER, "/run/pidns/p"), check: wantNS(mnt, net, ipc, uts, newPID)},
		{name: "pid TARGET joins the target's", mutate: pid(runtime.NamespaceMode_TARGET, "/proc/42/ns/pid"),
			check: wantNS(mnt, net, ipc, uts, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/proc/42/ns/pid"})},
		{name: "pid TARGET without a path", mutate: pid(runtime.NamespaceMode_TARGET, ""), wantErr: "TARGET"},
		{name: "cgroup namespace on v2", mutate: func(in *Input) { in.Host.CgroupV2 = true },
			check: wantNS(mnt, net, ipc, uts, newPID, specs.LinuxNamespace{Type: specs.CgroupNamespace})},
		{name: "cgroups path passed through", check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.CgroupsPath != "/kubepods/pod-uid/c1" {
				t.Errorf("cgroupsPath = %q", s.Linux.CgroupsPath)
			}
		}},
	})
}

func TestGenerateAnnotationsAndValidation(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	runCases(t, rootfs, []genCase{
		{name: "annotations", mutate: func(in *Input) {
			in.Config.Annotations = map[string]string{"team": "a", AnnotationSandboxID: "spoofed"}
		}, check: func(t *testing.T, s *specs.Spec) {
			want := map[string]string{
				"team":                     "a",
				AnnotationContainerType:    "container",
				AnnotationSandboxID:        "s1",
				AnnotationSandboxName:      "pod",
				AnnotationSandboxNamespace: "default",
				AnnotationSandboxUID:       "pod-uid",
				AnnotationContainerName:    "app",
				AnnotationImageName:        "docker.io/library/busybox:latest",
			}
			if len(s.Annotations) != len(want) {
				t.Errorf("annotations = %v, want %v", s.Annotations, want)
			}
			for k, v := range want {
				if s.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
				}
			}
		}},
		{name: "image name from the config when not given", mutate: func(in *Input) {
			in.ImageName = ""
			in.Config.Image = &runtime.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: "busybox:1.36"}
		}, check: func(t *testing.T, s *specs.Spec) {
			if got := s.Annotations[AnnotationImageName]; got != "busybox:1.36" {
				t.Errorf("image-name = %q, want the user-specified busybox:1.36", got)
			}
		}},
		{name: "root path and version", check: func(t *testing.T, s *specs.Spec) {
			if s.Root.Path != rootfs || s.Root.Readonly || s.Version != specs.Version {
				t.Errorf("root = %+v version %q", s.Root, s.Version)
			}
		}},
		{name: "nil config", mutate: func(in *Input) { in.Config = nil }, wantField: "config"},
		{name: "nil metadata", mutate: func(in *Input) { in.Config.Metadata = nil }, wantField: "metadata"},
		{name: "nil sandbox config", mutate: func(in *Input) { in.Sandbox = nil }, wantField: "sandbox_config"},
		{name: "nil sandbox metadata", mutate: func(in *Input) { in.Sandbox.Metadata = nil }, wantField: "sandbox_config.metadata"},
		{name: "relative rootfs", mutate: func(in *Input) { in.Rootfs = "rootfs" }, wantErr: "absolute"},
	})
}

func TestFieldError(t *testing.T) {
	inner := errors.New("boom")
	var err error = &FieldError{Field: "mounts[0].host_path", Err: inner}
	if !errors.Is(err, inner) || err.Error() != "invalid mounts[0].host_path: boom" {
		t.Errorf("FieldError = %q, unwraps to inner: %v", err, errors.Is(err, inner))
	}
}
