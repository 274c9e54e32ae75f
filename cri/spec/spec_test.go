package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment, and a malformed line
broken
app:x:1000:1000::/home/app:/bin/sh
web:x:1001:1001::/:/bin/sh
`
	testGroup = `root:x:0:
video:x:44:app,web
audio:x:63:app
app:x:1000:app
staff:x:50:web
wheel:x:10:root
`
)

// writeRootfs makes a rootfs under dir holding etc/passwd and etc/group.
func writeRootfs(t *testing.T, dir, passwd, group string) string {
	t.Helper()
	root := filepath.Join(dir, "rootfs")
	mustWrite(t, filepath.Join(root, "etc", "passwd"), passwd)
	mustWrite(t, filepath.Join(root, "etc", "group"), group)
	return root
}

func mustWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// baseInput is a container in a pod with its own network, IPC and UTS
// namespaces, an image with an entrypoint and cmd, and all pod files.
func baseInput(rootfs string) Input {
	return Input{
		ID: "c1",
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "app"},
			Image:    &runtime.ImageSpec{Image: "busybox"},
		},
		Sandbox: &runtime.PodSandboxConfig{
			Metadata: &runtime.PodSandboxMetadata{Name: "pod", Namespace: "default", Uid: "pod-uid"},
			Hostname: "podhost",
		},
		SandboxID: "s1",
		Image: ocispec.ImageConfig{
			Entrypoint: []string{"/entry"},
			Cmd:        []string{"serve", "--port=80"},
			Env:        []string{"PATH=/image/bin", "LANG=C", "MODE=image"},
		},
		ImageName:   "docker.io/library/busybox:latest",
		Rootfs:      rootfs,
		CgroupsPath: "/kubepods/pod-uid/c1",
		Namespaces:  Namespaces{Network: "/run/netns/p", IPC: "/run/ipcns/p", UTS: "/run/utsns/p"},
		Files:       SandboxFiles{Hosts: "/pod/hosts", Resolv: "/pod/resolv.conf", Hostname: "/pod/hostname", Shm: "/pod/shm"},
		Host:        &Host{SwapAccounting: true, Hugetlb: true},
	}
}

// sc returns the config's security context, creating it.
func sc(in *Input) *runtime.LinuxContainerSecurityContext {
	if in.Config.Linux == nil {
		in.Config.Linux = &runtime.LinuxContainerConfig{}
	}
	if in.Config.Linux.SecurityContext == nil {
		in.Config.Linux.SecurityContext = &runtime.LinuxContainerSecurityContext{}
	}
	return in.Config.Linux.SecurityContext
}

// res returns the config's resources, creating them.
func res(in *Input) *runtime.LinuxContainerResources {
	if in.Config.Linux == nil {
		in.Config.Linux = &runtime.LinuxContainerConfig{}
	}
	if in.Config.Linux.Resources == nil {
		in.Config.Linux.Resources = &runtime.LinuxContainerResources{}
	}
	return in.Config.Linux.Resources
}

func sandboxLinux(in *Input) *runtime.LinuxPodSandboxConfig {
	if in.Sandbox.Linux == nil {
		in.Sandbox.Linux = &runtime.LinuxPodSandboxConfig{}
	}
	return in.Sandbox.Linux
}

func equal[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func mountAt(s *specs.Spec, dst string) (specs.Mount, bool) {
	for _, m := range s.Mounts {
		if m.Destination == dst {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func wantMount(t *testing.T, s *specs.Spec, dst, typ, src string, opts ...string) {
	t.Helper()
	m, ok := mountAt(s, dst)
	if !ok {
		t.Errorf("no mount at %s in %v", dst, destinations(s))
		return
	}
	if m.Type != typ || m.Source != src {
		t.Errorf("mount %s = %s from %s, want %s from %s", dst, m.Type, m.Source, typ, src)
	}
	for _, o := range opts {
		if !slices.Contains(m.Options, o) {
			t.Errorf("mount %s options %q lack %q", dst, m.Options, o)
		}
	}
}

func destinations(s *specs.Spec) []string {
	var d []string
	for _, m := range s.Mounts {
		d = append(d, m.Destination)
	}
	return d
}

func nsPath(s *specs.Spec, typ specs.LinuxNamespaceType) (string, bool) {
	for _, n := range s.Linux.Namespaces {
		if n.Type == typ {
			return n.Path, true
		}
	}
	return "", false
}

type genCase struct {
	name      string
	mutate    func(in *Input)
	check     func(t *testing.T, s *specs.Spec)
	wantField string // a *FieldError naming this field
	wantErr   string // a plain error containing this
}

func runCases(t *testing.T, rootfs string, cases []genCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(rootfs)
			if tc.mutate != nil {
				tc.mutate(&in)
			}
			s, err := Generate(in)
			switch {
			case tc.wantField != "":
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("Generate error = %v, want a *FieldError for %s", err, tc.wantField)
				}
				if fe.Field != tc.wantField {
					t.Fatalf("FieldError.Field = %q (%v), want %q", fe.Field, err, tc.wantField)
				}
				return
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Generate error = %v, want one containing %q", err, tc.wantErr)
				}
				var fe *FieldError
				if errors.As(err, &fe) {
					t.Fatalf("error %v is a FieldError, want a plain error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			tc.check(t, s)
		})
	}
}

func TestGenerateProcess(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	runCases(t, rootfs, []genCase{
		{name: "args from image entrypoint and cmd", check: func(t *testing.T, s *specs.Spec) {
			equal(t, "args", s.Process.Args, []string{"/entry", "serve", "--port=80"})
		}},
		{name: "command overrides entrypoint and drops cmd", mutate: func(in *Input) {
			in.Config.Command = []string{"/bin/sh"}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "args", s.Process.Args, []string{"/bin/sh"})
		}},
		{name: "args only replace cmd after entrypoint", mutate: func(in *Input) {
			in.Config.Args = []string{"run", "-v"}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "args", s.Process.Args, []string{"/entry", "run", "-v"})
		}},
		{name: "command and args", mutate: func(in *Input) {
			in.Config.Command = []string{"/bin/sh"}
			in.Config.Args = []string{"-c", "true"}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "args", s.Process.Args, []string{"/bin/sh", "-c", "true"})
		}},
		{name: "empty-string entrypoint means none", mutate: func(in *Input) {
			in.Image.Entrypoint = []string{""}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "args", s.Process.Args, []string{"serve", "--port=80"})
		}},
		{name: "no command anywhere", mutate: func(in *Input) {
			in.Image.Entrypoint, in.Image.Cmd = nil, nil
		}, wantField: "command"},
		{name: "env merged, config wins by key in place", mutate: func(in *Input) {
			in.Config.Envs = []*runtime.KeyValue{{Key: "MODE", Value: []byte("config")}, {Key: "EXTRA", Value: []byte("a=b")}}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "env", s.Process.Env, []string{"PATH=/image/bin", "HOSTNAME=podhost", "LANG=C", "MODE=config", "EXTRA=a=b"})
		}},
		{name: "env key with =", mutate: func(in *Input) {
			in.Config.Envs = []*runtime.KeyValue{{Key: "A", Value: []byte("1")}, {Key: "B=C", Value: []byte("2")}}
		}, wantField: "envs[1].key"},
		{name: "default PATH when image and config have none", mutate: func(in *Input) {
			in.Image.Env = []string{"LANG=C"}
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "env", s.Process.Env, []string{"PATH=" + DefaultPath, "HOSTNAME=podhost", "LANG=C"})
		}},
		{name: "HOSTNAME from Input.Hostname over the sandbox's", mutate: func(in *Input) {
			in.Hostname = "given"
		}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Contains(s.Process.Env, "HOSTNAME=given") || s.Hostname != "given" {
				t.Errorf("env %q hostname %q, want HOSTNAME=given", s.Process.Env, s.Hostname)
			}
		}},
		{name: "HOSTNAME falls back to the node's", mutate: func(in *Input) {
			in.Sandbox.Hostname = ""
		}, check: func(t *testing.T, s *specs.Spec) {
			node, _ := os.Hostname()
			if !slices.Contains(s.Process.Env, "HOSTNAME="+node) {
				t.Errorf("env %q lacks HOSTNAME=%s", s.Process.Env, node)
			}
		}},
		{name: "config env can override HOSTNAME", mutate: func(in *Input) {
			in.Config.Envs = []*runtime.KeyValue{{Key: "HOSTNAME", Value: []byte("mine")}}
		}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Contains(s.Process.Env, "HOSTNAME=mine") || slices.Contains(s.Process.Env, "HOSTNAME=podhost") {
				t.Errorf("env %q, want only HOSTNAME=mine", s.Process.Env)
			}
		}},
		{name: "tty sets terminal and TERM", mutate: func(in *Input) {
			in.Config.Tty, in.Config.Stdin = true, true
		}, check: func(t *testing.T, s *specs.Spec) {
			if !s.Process.Terminal || !slices.Contains(s.Process.Env, "TERM=xterm") {
				t.Errorf("terminal %v env %q, want terminal and TERM=xterm", s.Process.Terminal, s.Process.Env)
			}
		}},
		{name: "stdin without tty is not a terminal", mutate: func(in *Input) {
			in.Config.Stdin, in.Config.StdinOnce = true, true
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.Terminal || slices.Contains(s.Process.Env, "TERM=xterm") {
				t.Errorf("terminal %v env %q, want no terminal", s.Process.Terminal, s.Process.Env)
			}
		}},
		{name: "working dir from config", mutate: func(in *Input) {
			in.Config.WorkingDir = "/srv/app/"
			in.Image.WorkingDir = "/image"
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.Cwd != "/srv/app" {
				t.Errorf("cwd = %q", s.Process.Cwd)
			}
		}},
		{name: "working dir from image", mutate: func(in *Input) {
			in.Image.WorkingDir = "/image"
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.Cwd != "/image" {
				t.Errorf("cwd = %q", s.Process.Cwd)
			}
		}},
		{name: "working dir defaults to root", check: func(t *testing.T, s *specs.Spec) {
			if s.Process.Cwd != "/" {
				t.Errorf("cwd = %q", s.Process.Cwd)
			}
		}},
		{name: "relative working dir", mutate: func(in *Input) {
			in.Config.WorkingDir = "srv"
		}, wantField: "working_dir"},
		{name: "RLIMIT_NOFILE default", check: func(t *testing.T, s *specs.Spec) {
			want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: DefaultNoFile, Hard: DefaultNoFile}}
			equal(t, "rlimits", s.Process.Rlimits, want)
		}},
		{name: "RLIMIT_NOFILE capped to the runtime's hard limit", mutate: func(in *Input) {
			in.Host.MaxNoFile = 20000
		}, check: func(t *testing.T, s *specs.Spec) {
			equal(t, "rlimits", s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 20000, Hard: 20000}})
		}},
		{name: "oom_score_adj kept", mutate: func(in *Input) {
			res(in).OomScoreAdj = 500
			in.OOMScoreAdjMin = -998
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 500 {
				t.Errorf("oomScoreAdj = %v, want 500", s.Process.OOMScoreAdj)
			}
		}},
		{name: "oom_score_adj raised to the minimum", mutate: func(in *Input) {
			res(in).OomScoreAdj = -997
			in.OOMScoreAdjMin = 100
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 100 {
				t.Errorf("oomScoreAdj = %v, want 100", s.Process.OOMScoreAdj)
			}
		}},
		{name: "oom_score_adj out of range", mutate: func(in *Input) {
			res(in).OomScoreAdj = 1001
		}, wantField: "linux.resources.oom_score_adj"},
		{name: "no_new_privs", mutate: func(in *Input) {
			sc(in).NoNewPrivs = true
		}, check: func(t *testing.T, s *specs.Spec) {
			if !s.Process.NoNewPrivileges {
				t.Error("noNewPrivileges not set")
			}
		}},
		{name: "new privileges by default", check: func(t *testing.T, s *specs.Spec) {
			if s.Process.NoNewPrivileges {
				t.Error("noNewPrivileges set without no_new_privs")
			}
		}},
	})
}

func TestGenerateUser(t *testing.T) {
	rootfs := writeRootfs(t, t.TempDir(), testPasswd, testGroup)
	user := func(uid, gid uint32, groups ...uint32) func(*testing.T, *specs.Spec) {
		return func(t *testing.T, s *specs.Spec) {
			t.Helper()
			u := s.Process.User
			if u.UID != uid || u.GID != gid || !slices.Equal(u.AdditionalGids, groups) {
				t.Errorf("user = %d:%d %v, want %d:%d %v", u.UID, u.GID, u.AdditionalGids, uid, gid, groups)
			}
		}
	}
	runCases(t, rootfs, []genCase{
		{name: "root by default, with root's groups", check: user(0, 0, 0, 10)},
		{name: "run_as_user found in passwd", mutate: func(in *Input) {
			sc(in).RunAsUser = &runtime.Int64Value{Value: 1000}
		}, check: user(1000, 1000, 44, 63, 1000)},
		{name: "run_as_user not in passwd runs with gid 0", mutate: func(in *Input) {
			sc(in).RunAsUser = &runtime.Int64Value{Value: 4242}
		}, check: user(4242, 0, 0)},
		{name: "run_as_user with run_as_group", mutate: func(in *Input) {
			sc(in).RunAsUser = &runtime.Int64Value{Value: 1001}
			sc(in).RunAsGroup = &runtime.Int64Value{Value: 3000}
		}, check: user(1001, 3000, 44, 50, 3000)},
		{name: "run_as_username", mutate: func(in *Input) {
			sc(in).RunAsUsername = "web"
		}, check: user(1001, 1001, 44, 50, 1001)},
		{name: "run_as_username not found", mutate: func(in *Input) {
			sc(in).RunAsUsername = "ghost"
		}, wantField: "linux.security_context.run_as_username"},
		{name: "run_as_user and run_as_username together", mutate: func(in *Input) {
			sc(in).RunAsUsername = "web"
			sc(in).RunAsUser = &runtime.Int64Value{Value: 1001}
		}, wantField: "linux.security_context.run_as_username"},
		{name: "run_as_group without a user", mutate: func(in *Input) {
			sc(in).RunAsGroup = &runtime.Int64Value{Value: 3000}
		}, wantField: "linux.security_context.run_as_group"},
		{name: "negative run_as_user", mutate: func(in *Input) {
			sc(in).RunAsUser = &runtime.Int64Value{Value: -1}
		}, wantField: "linux.security_context.run_as_user"},
		{name: "run_as_user overrides the image user", mutate: func(in *Input) {
			in.Image.User = "web"
			sc(in).RunAsUser = &runtime.Int64Value{Value: 1000}
		}, check: user(1000, 1000, 44, 63, 1000)},
		{name: "image user by name", mutate: func(in *Input) {
			in.Image.User = "app"
		}, check: user(1000, 1000, 44, 63, 1000)},
		{name: "image user uid:gid", mutate: func(in *Input) {
			in.Image.User = "1000:44"
		}, check: user(1000, 44, 44, 63)},
		{name: "image user name:group", mutate: func(in *Input) {
			in.Image.User = "web:audio"
		}, check: user(1001, 63, 44, 50, 63)},
		{name: "image user uid:group", mutate: func(in *Input) {
			in.Image.User = "5000:staff"
		}, check: user(5000, 50, 50)},
		{name: "image user name not found", mutate: func(in *Input) {
			in.Image.User = "ghost"
		}, wantField: "image"},
		{name: "image group not found", mutate: func(in *Input) {
			in.Image.User = "app:ghosts"
		}, wantField: "image"},
		{name: "supplemental groups merged, sorted, deduplicated", mutate: func(in *Input) {
			sc(in).RunAsUser = &runtime.Int64Value{Value: 1000}
			sc(in).SupplementalGroups = []int64{2000, 44, 5}
		}, check: user(1000, 1000, 5, 44, 63, 1000, 2000)},
		{name: "Strict policy ignores /etc/group", mutate: func(in *Input) {
			sc(in).RunAsUser = &runtime.Int64Value{Value: 1000}
			sc(in).SupplementalGroups = []int64{2000}
			sc(in).SupplementalGroupsPolicy = runtime.SupplementalGroupsPolicy_Strict
		}, check: user(1000, 1000, 1000, 2000)},
		{name: "negative supplemental group", mutate: func(in *Input) {
			sc(in).SupplementalGroups = []int64{1, -5}
		}, wantField: "linux.security_context.supplemental_groups[1]"},
	})
}

// TestGenerateUserSymlinks shows /etc/passwd and /etc/group are resolved as
// if the rootfs were "/": links pointing out of it land back inside.
func TestGenerateUserSymlinks(t *testing.T) {
	dir := t.TempDir()
	// What a host-side resolution would read: a different uid for "app".
	mustWrite(t, filepath.Join(dir, "outside", "passwd"), "app:x:6666:6666::/:/bin/sh\n")
	mustWrite(t, filepath.Join(dir, "outside", "group"), "evil:x:6666:app\n")
	root := filepath.Join(dir, "rootfs")
	// What the container sees at the same names.
	mustWrite(t, filepath.Join(root, "outside", "passwd"), "app:x:1234:1234::/:/bin/sh\n")
	mustWrite(t, filepath.Join(root, dir, "outside", "group"), "good:x:77:app\n")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Relative: ../../outside/passwd from rootfs/etc is dir/outside/passwd on
	// the host, but /outside/passwd in the container.
	if err := os.Symlink("../../outside/passwd", filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	// Absolute: the host path of dir/outside/group, re-rooted in the rootfs.
	if err := os.Symlink(filepath.Join(dir, "outside", "group"), filepath.Join(root, "etc", "group")); err != nil {
		t.Fatal(err)
	}
	in := baseInput(root)
	in.Image.User = "app"
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Process.User; u.UID != 1234 || u.GID != 1234 || !slices.Equal(u.AdditionalGids, []uint32{77, 1234}) {
		t.Errorf("user = %d:%d %v, want 1234:1234 [77 1234] from inside the rootfs", u.UID, u.GID, u.AdditionalGids)
	}

	// A link loop is an error, not a hang.
	loop := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(filepath.Join(loop, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("passwd", filepath.Join(loop, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	in = baseInput(loop)
	in.Image.User = "app"
	if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("Generate with a looping /etc/passwd: %v, want a symlink loop error", err)
	}
}

func TestGenerateNoPasswd(t *testing.T) {
	root := t.TempDir()
	in := baseInput(root)
	in.Config.Linux = &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{RunAsUser: &runtime.Int64Value{Value: 7}}}
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Process.User; u.UID != 7 || u.GID != 0 || !slices.Equal(u.AdditionalGids, []uint32{0}) {
		t.Errorf("user = %+v, want 7:0 [0]", u)
	}
	in.Config.Linux.SecurityContext = &runtime.LinuxContainerSecurityContext{RunAsUsername: "app"}
	var fe *FieldError
	if _, err := Generate(in); !errors.As(err, &fe) || fe.Field != "linux.security_context.run_as_username" {
		t.Errorf("run_as_username without /etc/passwd: %v, want a FieldError", err)
	}
}
