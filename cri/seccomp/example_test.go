package seccomp_test

import (
	"fmt"
	"log"

	"github.com/nodekit-dev/nodekit/cri/seccomp"
)

func Example() {
	// The RuntimeDefault filter of a container with CAP_SYS_ADMIN on an
	// x86-64 node: mount and unshare are allowed because the capability is.
	s := seccomp.Default(seccomp.Target{Arch: "amd64", Capabilities: []string{"CAP_SYS_ADMIN"}, Kernel: "6.1.0"})
	fmt.Println(s.DefaultAction, s.Architectures)

	// A Localhost profile in Docker's format.
	p, err := seccomp.Parse([]byte(`{
		"defaultAction": "SCMP_ACT_ERRNO",
		"archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
		"syscalls": [
			{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
			{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
		]
	}`))
	if err != nil {
		log.Fatal(err)
	}
	f, err := p.Resolve(seccomp.Target{Arch: "amd64", Capabilities: []string{"CAP_CHOWN"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Architectures, len(f.Syscalls), f.Syscalls[0].Names)

	_, err = seccomp.Parse([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}`))
	fmt.Println(err)
	// Output:
	// SCMP_ACT_ERRNO [SCMP_ARCH_X86_64 SCMP_ARCH_X86 SCMP_ARCH_X32]
	// [SCMP_ARCH_X86_64 SCMP_ARCH_X86] 1 [read write exit_group]
	// syscalls[0].action: unknown action "ALLOW"
}
