package cri_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// The crictl smoke test: the Kubernetes CRI CLI drives nodekit-cri through a pod's
// whole life, pulling its image from a registry on 127.0.0.1.
func TestCrictlSmoke(t *testing.T) {
	h := newHarness(t)
	h.startDaemon()
	crictlBin := testenv.Binary(t, "crictl")
	host, _ := pushSample(t, "busybox", "smoke/busybox:1")
	image := host + "/smoke/busybox:1"
	dir := filepath.Dir(h.root)

	crictl := crictlRunner(t, crictlBin, h.sock)
	write := func(name, content string) string { return writeFile(t, dir, name, content) }
	podJSON := write("pod.json", fmt.Sprintf(`{
  "metadata": {"name": "smoke", "namespace": "default", "uid": "smoke-uid", "attempt": 0},
  "hostname": "smoke",
  "log_directory": %q
}`, filepath.Join(dir, "logs")))
	ctrJSON := write("ctr.json", fmt.Sprintf(`{
  "metadata": {"name": "app"},
  "image": {"image": %q},
  "command": ["sh", "-c", "echo smoke-says-hi; exec sleep 1000"],
  "log_path": "app.log"
}`, image))

	if v := crictl("version"); !strings.Contains(v, "RuntimeName:  nodekit") {
		t.Fatalf("crictl version:\n%s", v)
	}
	crictl("pull", image)
	if imgs := crictl("images"); !strings.Contains(imgs, host+"/smoke/busybox") {
		t.Fatalf("crictl images:\n%s", imgs)
	}
	pod := crictl("runp", podJSON)
	ctr := crictl("create", pod, ctrJSON, podJSON)
	crictl("start", ctr)
	if ps := crictl("ps"); !strings.Contains(ps, "Running") || !strings.Contains(ps, ctr[:13]) {
		t.Fatalf("crictl ps:\n%s", ps)
	}
	if pods := crictl("pods"); !strings.Contains(pods, "smoke") || !strings.Contains(pods, "Ready") {
		t.Fatalf("crictl pods:\n%s", pods)
	}
	// crictl accepts the short ids it prints.
	if out := crictl("exec", "--sync", ctr[:13], "echo", "exec-works"); out != "exec-works" {
		t.Fatalf("crictl exec: %q", out)
	}
	waitFor(t, "the container's log line", 10*time.Second, func() bool {
		out, _ := exec.Command(crictlBin, "--runtime-endpoint", "unix://"+h.sock, "logs", ctr).CombinedOutput()
		return strings.Contains(string(out), "smoke-says-hi")
	})
	if insp := crictl("inspect", ctr); !strings.Contains(insp, `"state": "CONTAINER_RUNNING"`) {
		t.Fatalf("crictl inspect:\n%s", insp)
	}
	crictl("stop", "--timeout", "1", ctr)
	if ps := crictl("ps", "-a", "--state", "exited", "-q"); ps != ctr {
		t.Fatalf("crictl ps -a --state exited -q = %q, want %s", ps, ctr)
	}
	crictl("rm", ctr)
	crictl("stopp", pod)
	crictl("rmp", pod)
	if pods := crictl("pods", "-q"); pods != "" {
		t.Fatalf("pods left: %q", pods)
	}
	crictl("rmi", image)
	if imgs := crictl("images", "-q"); imgs != "" {
		t.Fatalf("images left: %q", imgs)
	}
}

// crictlRunner runs bin/crictl against the shim at sock, failing t (with
// crictl's output) when it fails; it returns the trimmed stdout.
func crictlRunner(t *testing.T, bin, sock string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		full := append([]string{"--runtime-endpoint", "unix://" + sock, "--image-endpoint", "unix://" + sock, "--timeout", "60s"}, args...)
		cmd := exec.Command(bin, full...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
}

// writeFile writes a test file into dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
