package spec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Device tests stat the host's /dev/null and /dev/zero: Linux only.

func TestGenerateDevices(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	runCases(t, rootfs, []genCase{
		{name: "device with permissions", mutate: func(in *Input) {
			in.Config.Devices = []*runtime.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"}}
		}, check: func(t *testing.T, s *specs.Spec) {
			if len(s.Linux.Devices) != 1 {
				t.Fatalf("devices = %+v, want one", s.Linux.Devices)
			}
			d := s.Linux.Devices[0]
			if d.Path != "/dev/mynull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 || d.FileMode == nil {
				t.Errorf("device = %+v, want /dev/mynull c 1:3", d)
			}
			rules := s.Linux.Resources.Devices
			if len(rules) != 2 || rules[0].Allow || rules[0].Access != "rwm" {
				t.Fatalf("device rules = %+v, want deny-all then one allow", rules)
			}
			r := rules[1]
			if !r.Allow || r.Type != "c" || *r.Major != 1 || *r.Minor != 3 || r.Access != "rw" {
				t.Errorf("rule = %+v, want allow c 1:3 rw", r)
			}
		}},
		{name: "container path defaults to host path, permissions to rwm", mutate: func(in *Input) {
			in.Config.Devices = []*runtime.Device{{HostPath: "/dev/zero"}}
		}, check: func(t *testing.T, s *specs.Spec) {
			if d := s.Linux.Devices; len(d) != 1 || d[0].Path != "/dev/zero" || d[0].Minor != 5 {
				t.Errorf("devices = %+v, want /dev/zero", d)
			}
			if r := s.Linux.Resources.Devices; r[len(r)-1].Access != "rwm" {
				t.Errorf("rule access = %q, want rwm", r[len(r)-1].Access)
			}
		}},
		{name: "no devices: deny all", check: func(t *testing.T, s *specs.Spec) {
			equal(t, "device rules", s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}})
		}},
		{name: "missing device", mutate: func(in *Input) {
			in.Config.Devices = []*runtime.Device{{HostPath: "/dev/null"}, {HostPath: "/dev/no-such-device", ContainerPath: "/dev/x"}}
		}, wantField: "devices[1].host_path"},
		{name: "regular file is not a device", mutate: func(in *Input) {
			in.Config.Devices = []*runtime.Device{{HostPath: "/etc/hostname"}}
		}, wantField: "devices[0].host_path"},
		{name: "bad permissions", mutate: func(in *Input) {
			in.Config.Devices = []*runtime.Device{{HostPath: "/dev/null", Permissions: "rwx"}}
		}, wantField: "devices[0].permissions"},
		{name: "relative container path", mutate: func(in *Input) {
			in.Config.Devices = []*runtime.Device{{HostPath: "/dev/null", ContainerPath: "null"}}
		}, wantField: "devices[0].container_path"},
	})
}

func TestGeneratePrivileged(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	hostCaps := []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"}
	privileged := func(in *Input) {
		sc(in).Privileged = true
		in.Sandbox.Linux = &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{Privileged: true}}
		in.Host.Capabilities = hostCaps
		in.Host.CgroupV2 = true
	}
	runCases(t, rootfs, []genCase{
		{name: "privileged", mutate: func(in *Input) {
			privileged(in)
			sc(in).Capabilities = &runtime.Capability{DropCapabilities: []string{"ALL"}}
			sc(in).MaskedPaths = []string{"/proc/kcore"}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "bounding", s.Process.Capabilities.Bounding, hostCaps)
			equal(t, "effective", s.Process.Capabilities.Effective, hostCaps)
			equal(t, "permitted", s.Process.Capabilities.Permitted, hostCaps)
			equal(t, "device rules", s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}})
			found := false
			for _, d := range s.Linux.Devices {
				if d.Path == "/dev/null" && d.Major == 1 && d.Minor == 3 {
					found = true
				}
				if d.Path == "/dev/console" || d.Type == "p" {
					t.Errorf("host device %+v should be skipped", d)
				}
			}
			if !found {
				t.Errorf("host devices %d lack /dev/null", len(s.Linux.Devices))
			}
			if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
				t.Errorf("masked %q readonly %q, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
			wantMount(t, s, "/sys", "sysfs", "sysfs", "rw")
			wantMount(t, s, "/sys/fs/cgroup", "cgroup", "cgroup", "rw")
			if _, ok := nsPath(s, specs.CgroupNamespace); ok {
				t.Error("privileged container got a cgroup namespace")
			}
		}},
		{name: "privileged keeps requested devices under their names", mutate: func(in *Input) {
			privileged(in)
			in.Config.Devices = []*runtime.Device{{HostPath: "/dev/zero", ContainerPath: "/dev/null"}}
		}, check: func(t *testing.T, s *specs.Spec) {
			n := 0
			for _, d := range s.Linux.Devices {
				if d.Path == "/dev/null" {
					n++
					if d.Minor != 5 {
						t.Errorf("/dev/null = %+v, want the requested /dev/zero", d)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d devices at /dev/null, want 1", n)
			}
		}},
		{name: "privileged container in an unprivileged pod", mutate: func(in *Input) {
			sc(in).Privileged = true
		}, wantField: "linux.security_context.privileged"},
	})
}

// TestGenerateDetectsHost: with no Host given, Generate uses this process's
// limits and capabilities, so the spec is one runc can apply here.
func TestGenerateDetectsHost(t *testing.T) {
	want, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	in := baseInput(writeRootfs(t, t.TempDir(), testPasswd, testGroup))
	in.Host = nil
	in.Config.Linux = &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{Privileged: true}}
	in.Sandbox.Linux = &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{Privileged: true}}
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "bounding", s.Process.Capabilities.Bounding, want.Capabilities)
	nofile := uint64(DefaultNoFile)
	if want.MaxNoFile != 0 && want.MaxNoFile < nofile {
		nofile = want.MaxNoFile
	}
	equal(t, "rlimits", s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: nofile, Hard: nofile}})
}
