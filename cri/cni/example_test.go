package cni_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nodekit-dev/nodekit/cri/cni"
)

// Attach a pinned network namespace to the network configured in /etc/cni/net.d,
// keep the attachment, and detach it later (possibly from another process).
func Example() {
	m := cni.New(cni.Options{CacheDir: "/run/example/cni"})
	a, err := m.Prepare(cni.Pod{
		ID:        "4f2a9c0e", // the sandbox id
		NetNS:     "/run/example/sandboxes/4f2a9c0e/ns/net",
		Namespace: "default", Name: "web", UID: "6f1c2b4e",
		Ports: []cni.PortMapping{{HostPort: 8080, ContainerPort: 8080, Protocol: "tcp"}},
	})
	if errors.Is(err, cni.ErrNotReady) {
		fmt.Println("no network yet:", err)
		return
	}
	saved, _ := json.Marshal(a) // persist it before ADD, so DEL can always run
	if err := m.Attach(context.TODO(), a); err != nil {
		fmt.Println("attach:", err)
		// ADD may have done part of its work: DEL undoes it.
		if err := m.Detach(context.TODO(), a); err != nil {
			fmt.Println("detach:", err)
		}
		return
	}
	fmt.Println("pod IPs:", a.IPs)

	var again cni.Attachment
	if err := json.Unmarshal(saved, &again); err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Detach(context.TODO(), &again); err != nil {
		fmt.Println("detach:", err)
	}
}

// A Manager is not ready until its directory holds a configuration; it looks again
// at every call.
func ExampleManager_Config() {
	dir, _ := os.MkdirTemp("", "net.d")
	defer os.RemoveAll(dir)
	m := cni.New(cni.Options{ConfDir: dir})
	_, err := m.Config()
	fmt.Println(errors.Is(err, cni.ErrNotReady))
	fmt.Println(strings.ReplaceAll(err.Error(), dir, "DIR"))
	// Output:
	// true
	// network plugin not ready: no network config found in DIR
}
