package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fuzzSeedRequest is a realistic CreateContainer request, as the kubelet
// sends for a pod with resources, probes' security context and volumes.
func fuzzSeedRequest() (*runtime.ContainerConfig, *runtime.PodSandboxConfig, ocispec.ImageConfig) {
	cfg := &runtime.ContainerConfig{
		Metadata:   &runtime.ContainerMetadata{Name: "app", Attempt: 1},
		Image:      &runtime.ImageSpec{Image: "sha256:2f027bfff3bc565fe7a74e0819d39c9c2375e3eac2ee40c41f1502d54a432841", UserSpecifiedImage: "nodekit.local/web:latest"},
		Command:    []string{"httpd"},
		Args:       []string{"-f", "-p", "8080"},
		WorkingDir: "/www",
		Envs:       []*runtime.KeyValue{{Key: "MODE", Value: []byte("prod")}, {Key: "PATH", Value: []byte("/bin")}},
		Mounts: []*runtime.Mount{
			{ContainerPath: "/data", HostPath: "/var/lib/pods/x/volumes/data", Propagation: runtime.MountPropagation_PROPAGATION_PRIVATE},
			{ContainerPath: "/etc/cfg", HostPath: "/var/lib/pods/x/volumes/cfg", Readonly: true, RecursiveReadOnly: true},
			{ContainerPath: "/dev/termination-log", HostPath: "/var/lib/pods/x/containers/app/0"},
		},
		Devices:     []*runtime.Device{{ContainerPath: "/dev/mynull", HostPath: "/dev/null", Permissions: "rw"}},
		Labels:      map[string]string{"io.kubernetes.container.name": "app"},
		Annotations: map[string]string{"io.kubernetes.container.restartCount": "1"},
		LogPath:     "app/1.log",
		Linux: &runtime.LinuxContainerConfig{
			Resources: &runtime.LinuxContainerResources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000,
				MemoryLimitInBytes: 128 << 20, OomScoreAdj: 900, HugepageLimits: []*runtime.HugepageLimit{{PageSize: "2MB", Limit: 0}}},
			SecurityContext: &runtime.LinuxContainerSecurityContext{
				Capabilities:       &runtime.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"MKNOD"}},
				RunAsUser:          &runtime.Int64Value{Value: 1000},
				SupplementalGroups: []int64{44},
				ReadonlyRootfs:     true,
				NoNewPrivs:         true,
				Seccomp:            &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault},
				MaskedPaths:        []string{"/proc/kcore"},
				ReadonlyPaths:      []string{"/proc/sys"},
				NamespaceOptions:   &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
			},
		},
	}
	sb := &runtime.PodSandboxConfig{
		Metadata:     &runtime.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "8d5f1e7c", Attempt: 0},
		Hostname:     "web",
		LogDirectory: "/var/log/pods/default_web_8d5f1e7c",
		Labels:       map[string]string{"app": "web"},
		Linux: &runtime.LinuxPodSandboxConfig{
			CgroupParent:    "/kubepods/burstable/pod8d5f1e7c",
			SecurityContext: &runtime.LinuxSandboxSecurityContext{NamespaceOptions: &runtime.NamespaceOption{}},
			Sysctls:         map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"},
		},
	}
	img := ocispec.ImageConfig{User: "www-data", Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Entrypoint: []string{"httpd", "-f", "-v", "-p", "8080", "-h", "/www"}, WorkingDir: "/www"}
	return cfg, sb, img
}

// FuzzGenerate: a CreateContainer request (the CRI ContainerConfig and
// PodSandboxConfig in protobuf wire format, as the shim receives them), an
// image config (JSON) and the image's /etc/passwd and /etc/group
// (separated by a line "--"), on a node chosen by host. Generate either fails
// (invalid requests with a *FieldError) or returns a spec with a Process that
// has arguments, an absolute clean working directory and KEY=VALUE
// environment, the Root it was given, Linux with resources, clean absolute
// mount destinations none of which is mounted twice by the defaults, the CRI
// annotations, no namespace type twice, and which encodes to JSON that
// decodes to the same spec. Seeds: below and testdata/fuzz/FuzzGenerate.
func FuzzGenerate(f *testing.F) {
	cfg, sb, img := fuzzSeedRequest()
	imgJSON, _ := json.Marshal(img)
	users := []byte(testPasswd + "--\n" + testGroup)
	add := func(cfg *runtime.ContainerConfig, sb *runtime.PodSandboxConfig, img []byte, host uint8) {
		c, err := proto.Marshal(cfg)
		if err != nil {
			f.Fatal(err)
		}
		s, err := proto.Marshal(sb)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c, s, img, users, host)
	}
	add(cfg, sb, imgJSON, 0)
	v2 := proto.Clone(cfg).(*runtime.ContainerConfig)
	v2.Linux.Resources.Unified = map[string]string{"memory.high": "100000000"}
	add(v2, sb, imgJSON, 0xff)
	base := baseInput("/")
	add(base.Config, base.Sandbox, []byte(`{"Entrypoint":["/entry"],"Cmd":["serve"],"User":"app:video"}`), 1)
	priv := proto.Clone(cfg).(*runtime.ContainerConfig)
	priv.Linux.SecurityContext = &runtime.LinuxContainerSecurityContext{Privileged: true, RunAsUsername: "web",
		NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE, Pid: runtime.NamespaceMode_NODE, Ipc: runtime.NamespaceMode_NODE}}
	psb := proto.Clone(sb).(*runtime.PodSandboxConfig)
	psb.Linux.SecurityContext = &runtime.LinuxSandboxSecurityContext{Privileged: true,
		NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE, Pid: runtime.NamespaceMode_NODE, Ipc: runtime.NamespaceMode_NODE}}
	add(priv, psb, []byte(`{}`), 2)

	rootfs := filepath.Join(f.TempDir(), "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, cfgPB, sbPB, imageJSON, users []byte, host uint8) {
		if len(cfgPB)+len(sbPB)+len(imageJSON)+len(users) > 256<<10 {
			return
		}
		cfg, sb := &runtime.ContainerConfig{}, &runtime.PodSandboxConfig{}
		if proto.Unmarshal(cfgPB, cfg) != nil || proto.Unmarshal(sbPB, sb) != nil {
			return
		}
		if p := localhostSeccomp(cfg); p != "" {
			// seccomp.Load reads the whole file the request names: skip what
			// is not a small regular file (/dev/zero would never end).
			if fi, err := os.Stat(p); err == nil && (!fi.Mode().IsRegular() || fi.Size() > 1<<20) {
				return
			}
		}
		var img ocispec.ImageConfig
		if len(imageJSON) > 0 && json.Unmarshal(imageJSON, &img) != nil {
			return
		}
		passwd, group, _ := bytes.Cut(users, []byte("--\n"))
		if err := os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), passwd, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, "etc", "group"), group, 0o644); err != nil {
			t.Fatal(err)
		}
		in := Input{
			ID: "c1", Config: cfg, Sandbox: sb, SandboxID: "s1", Image: img,
			Rootfs: rootfs, CgroupsPath: "/kubepods/pod/c1",
			Namespaces:     Namespaces{Network: "/run/netns/p", IPC: "/run/ipcns/p", UTS: "/run/utsns/p"},
			Files:          SandboxFiles{Hosts: "/pod/hosts", Resolv: "/pod/resolv.conf", Hostname: "/pod/hostname", Shm: "/pod/shm"},
			OOMScoreAdjMin: -1000,
			Host: &Host{CgroupV2: host&1 != 0, SwapAccounting: host&2 != 0, Hugetlb: host&4 != 0,
				AppArmor: false, SELinux: host&8 != 0, MaxNoFile: uint64(host&16) << 16},
			Note: func(string) {},
		}
		if host&32 != 0 {
			in.Namespaces.PID = "/run/pidns/p"
		}
		if host&64 != 0 {
			in.Namespaces.User = "/run/userns/p"
			in.Namespaces.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			in.Namespaces.GIDMappings = in.Namespaces.UIDMappings
		}
		s, err := Generate(in)
		if err != nil {
			if s != nil {
				t.Fatalf("Generate failed (%v) but returned a spec", err)
			}
			var fe *FieldError
			if errors.As(err, &fe) && fe.Field == "" {
				t.Fatalf("a FieldError without a field: %v", err)
			}
			return
		}
		checkSpec(t, in, s)
	})
}

// localhostSeccomp is the host path of the Localhost seccomp profile cfg
// asks for, or "".
func localhostSeccomp(cfg *runtime.ContainerConfig) string {
	sc := cfg.GetLinux().GetSecurityContext()
	ref := sc.GetSeccomp().GetLocalhostRef()
	if sc.GetSeccomp() == nil {
		//lint:ignore SA1019 the deprecated field is what old kubelets send
		ref = sc.GetSeccompProfilePath()
	}
	return strings.TrimPrefix(ref, profileLocalhost)
}

func checkSpec(t *testing.T, in Input, s *specs.Spec) {
	t.Helper()
	if s == nil || s.Process == nil || s.Root == nil || s.Linux == nil || s.Linux.Resources == nil {
		t.Fatalf("spec without Process, Root or Linux resources: %+v", s)
	}
	if s.Root.Path != in.Rootfs {
		t.Fatalf("root %q, want %q", s.Root.Path, in.Rootfs)
	}
	p := s.Process
	if len(p.Args) == 0 {
		t.Fatal("no process arguments")
	}
	if !path.IsAbs(p.Cwd) || path.Clean(p.Cwd) != p.Cwd {
		t.Fatalf("working directory %q", p.Cwd)
	}
	for _, e := range p.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			t.Fatalf("environment entry %q is not KEY=VALUE", e)
		}
	}
	user := map[string]bool{}
	for _, m := range in.Config.GetMounts() {
		user[path.Clean(m.GetContainerPath())] = true
	}
	seen := map[string]bool{}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Destination) || path.Clean(m.Destination) != m.Destination {
			t.Fatalf("mount destination %q", m.Destination)
		}
		if seen[m.Destination] && !user[m.Destination] {
			t.Fatalf("%s is mounted twice: %+v", m.Destination, s.Mounts)
		}
		seen[m.Destination] = true
	}
	ns := map[specs.LinuxNamespaceType]bool{}
	for _, n := range s.Linux.Namespaces {
		if ns[n.Type] {
			t.Fatalf("namespace %s twice: %+v", n.Type, s.Linux.Namespaces)
		}
		ns[n.Type] = true
	}
	for _, k := range []string{AnnotationContainerType, AnnotationSandboxID, AnnotationContainerName} {
		if _, ok := s.Annotations[k]; !ok {
			t.Fatalf("annotation %s missing", k)
		}
	}
	enc, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("encode the spec: %v", err)
	}
	var back specs.Spec
	if err := json.Unmarshal(enc, &back); err != nil {
		t.Fatalf("decode the spec: %v\n%s", err, enc)
	}
	if enc2, _ := json.Marshal(&back); !bytes.Equal(enc, enc2) {
		t.Fatalf("the spec does not encode to itself:\n%s\n%s", enc, enc2)
	}
}
