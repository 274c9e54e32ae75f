package spec_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/spec"
)

func Example() {
	// A rootfs with a user "app"; normally the image's mounted snapshot.
	rootfs, err := os.MkdirTemp("", "rootfs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(rootfs)
	_ = os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	_ = os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	_ = os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("app:x:1000:\nvideo:x:44:app\n"), 0o644)

	in := spec.Input{
		ID: "c1",
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "web"},
			Args:     []string{"--port=8080"},
			Envs:     []*runtime.KeyValue{{Key: "MODE", Value: []byte("prod")}},
			Linux: &runtime.LinuxContainerConfig{
				SecurityContext: &runtime.LinuxContainerSecurityContext{RunAsUsername: "app"},
				Resources:       &runtime.LinuxContainerResources{MemoryLimitInBytes: 128 << 20},
			},
		},
		Sandbox: &runtime.PodSandboxConfig{
			Metadata: &runtime.PodSandboxMetadata{Name: "web-0", Namespace: "default", Uid: "u1"},
			Hostname: "web-0",
		},
		SandboxID:   "s1",
		Image:       ocispec.ImageConfig{Entrypoint: []string{"/bin/server"}, Cmd: []string{"--port=80"}, WorkingDir: "/srv"},
		ImageName:   "example.com/web:1",
		Rootfs:      rootfs,
		CgroupsPath: "/kubepods/podu1/c1",
		Namespaces:  spec.Namespaces{Network: "/run/nodekit/ns/s1/net", IPC: "/run/nodekit/ns/s1/ipc", UTS: "/run/nodekit/ns/s1/uts"},
		Host:        &spec.Host{SwapAccounting: true},
	}
	s, err := spec.Generate(in)
	if err != nil {
		panic(err) // not log.Fatal: the deferred RemoveAll runs
	}
	fmt.Println("args:", s.Process.Args)
	fmt.Println("cwd:", s.Process.Cwd)
	fmt.Println("user:", s.Process.User.UID, s.Process.User.GID, s.Process.User.AdditionalGids)
	fmt.Println("env:", s.Process.Env)
	fmt.Println("memory:", *s.Linux.Resources.Memory.Limit, "swap:", *s.Linux.Resources.Memory.Swap)
	fmt.Println("capabilities:", s.Process.Capabilities.Bounding)

	// An invalid request names the CRI field at fault.
	in.Config.Linux.SecurityContext.RunAsUsername = "nobody"
	_, err = spec.Generate(in)
	var fe *spec.FieldError
	if errors.As(err, &fe) {
		fmt.Println("field:", fe.Field)
	}
	// Output:
	// args: [/bin/server --port=8080]
	// cwd: /srv
	// user: 1000 1000 [44 1000]
	// env: [PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOSTNAME=web-0 MODE=prod]
	// memory: 134217728 swap: 134217728
	// capabilities: [CAP_CHOWN CAP_DAC_OVERRIDE CAP_FSETID CAP_FOWNER CAP_SETGID CAP_SETUID CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_KILL]
	// field: linux.security_context.run_as_username
}
