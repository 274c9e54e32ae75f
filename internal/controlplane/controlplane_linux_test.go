package controlplane_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodekit-dev/nodekit/internal/controlplane"
)

// TestControlPlane starts two control planes at once (they must not collide on
// ports or directories) and checks on each what a node joining it relies on:
// the Node authorizer and NodeRestriction let node-a register itself and
// renew its own Lease but nothing of another node's nor an unrelated secret,
// and the controller manager and the scheduler run (a Deployment becomes a
// ReplicaSet and a Pod bound to node-a). Afterwards nothing of it may be left
// running and its directory must be gone.
func TestControlPlane(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var dir string
			t.Run("cluster", func(t *testing.T) {
				cp := controlplane.Start(t, controlplane.Options{})
				dir = cp.Dir
				exercise(t, cp)
			})
			if dir == "" {
				return // skipped or failed before it started
			}
			if procs := processesMentioning(t, dir); len(procs) > 0 {
				t.Errorf("still running after the cleanup: %s", strings.Join(procs, "; "))
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s not removed (stat: %v)", dir, err)
			}
		})
	}
}

func exercise(t *testing.T, cp *controlplane.ControlPlane) {
	mustKubectl := func(args ...string) string {
		t.Helper()
		out, err := cp.Kubectl(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := mustKubectl("get", "--raw", "/readyz"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("/readyz: %q", out)
	}
	if out := mustKubectl("get", "--raw", "/version"); !strings.Contains(out, `"gitVersion": "v1.`) {
		t.Errorf("/version is not stamped with a release: %s", out)
	}

	node := cp.NodeKubeconfig(t, "node-a")
	asNode := func(args ...string) (string, error) {
		t.Helper()
		return cp.KubectlAs(t, node, args...)
	}
	forbidden := func(what string, args ...string) {
		t.Helper()
		out, err := asNode(args...)
		if err == nil {
			t.Errorf("node-a could %s: %s", what, out)
		} else if !strings.Contains(err.Error(), "(Forbidden)") {
			t.Errorf("node-a %s: want Forbidden, got %v", what, err)
		} else {
			t.Logf("node-a may not %s: %v", what, err)
		}
	}
	files := t.TempDir()
	manifest := func(name, text string) string {
		t.Helper()
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nodeObject := func(name string) string {
		return manifest("node-"+name+".yaml", fmt.Sprintf(`apiVersion: v1
kind: Node
metadata:
  name: %s
  labels:
    kubernetes.io/hostname: %s
`, name, name))
	}
	now := time.Now().UTC()
	lease := func(name string) string {
		return manifest("lease-"+name+".yaml", fmt.Sprintf(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: %s
  namespace: kube-node-lease
spec:
  holderIdentity: %s
  leaseDurationSeconds: 40
  renewTime: %q
`, name, name, now.Format("2006-01-02T15:04:05.000000Z07:00")))
	}

	// What a kubelet does when it registers, as node-a.
	if out, err := asNode("create", "-f", nodeObject("node-a")); err != nil {
		t.Fatalf("node-a registering itself: %v", err)
	} else {
		t.Logf("node-a: %s", strings.TrimSpace(out))
	}
	if _, err := asNode("create", "-f", lease("node-a")); err != nil {
		t.Fatalf("node-a creating its Lease: %v", err)
	}
	forbidden("register node-b", "create", "-f", nodeObject("node-b"))
	forbidden("create node-b's Lease", "create", "-f", lease("node-b"))
	mustKubectl("create", "secret", "generic", "unrelated", "--from-literal=key=value")
	forbidden("read a secret no pod of it references", "get", "secret", "unrelated", "-o", "name")

	// node-a Ready with room for pods; then a Deployment: the controller manager
	// makes its ReplicaSet and Pod, the scheduler binds the Pod to node-a.
	ts := now.Format(time.RFC3339)
	resources := `{"cpu":"4","memory":"8Gi","pods":"110"}`
	mustKubectl("patch", "node", "node-a", "--subresource=status", "--type=merge", "-p", fmt.Sprintf(
		`{"status":{"capacity":%s,"allocatable":%s,"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"set by the test","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`,
		resources, resources, ts, ts))
	mustKubectl("create", "deployment", "web", "--image=registry.k8s.io/pause:3.10", "--replicas=1")
	eventually(t, "the Deployment's ReplicaSet", func() (bool, string) {
		out, err := cp.Kubectl(t, "get", "replicasets", "-l", "app=web", "-o", "name")
		return err == nil && strings.HasPrefix(out, "replicaset.apps/web-"), fmt.Sprint(out, err)
	})
	eventually(t, "the Deployment's Pod bound to node-a", func() (bool, string) {
		out, err := cp.Kubectl(t, "get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName}{"\n"}{end}`)
		lines := strings.Fields(out)
		return err == nil && len(lines) == 1 && strings.HasSuffix(lines[0], "=node-a"), fmt.Sprint(out, err)
	})
}

// eventually polls cond until it holds, failing the test after two minutes
// with cond's last report.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("waiting for %s: last: %s", what, last)
		case <-tick.C:
		}
	}
}

// processesMentioning lists the processes whose command line mentions a path in dir.
func processesMentioning(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) {
			continue
		}
		found = append(found, fmt.Sprintf("pid %d: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	}
	return found
}
