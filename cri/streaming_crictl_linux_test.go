package cri_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testterm"
)

// crictl's exec, attach and port-forward against the nodekit-cri binary, whose
// streaming server listens on its default address (loopback, a free port).
func TestStreamingWithCrictl(t *testing.T) {
	h := newHarness(t)
	h.startDaemon()
	for _, img := range []string{"busybox", "web"} {
		out, err := exec.Command(testenv.Binary(t, "nodekit-cri"), "import", "--root", h.root, testenv.Image(t, img)).CombinedOutput()
		if err != nil {
			t.Fatalf("import %s: %v\n%s", img, err, out)
		}
	}
	pod, podCfg := h.runPod("cli")
	app := h.createContainer(pod, podCfg, containerConfig("app", busybox, "sleep", "1000"))
	catCfg := containerConfig("cat", busybox, "cat")
	catCfg.Stdin = true
	cat := h.createContainer(pod, podCfg, catCfg)
	web := h.createContainer(pod, podCfg, containerConfig("web", "nodekit.local/web:latest"))
	for _, id := range []string{app, cat, web} {
		h.startContainer(id)
		h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	}

	crictlBin := testenv.Binary(t, "crictl")
	command := func(args ...string) *exec.Cmd {
		full := append([]string{"--runtime-endpoint", "unix://" + h.sock, "--timeout", "60s"}, args...)
		cmd := exec.Command(crictlBin, full...)
		cmd.Dir = filepath.Dir(h.root) // crictl looks for a crictl.yaml there: none
		return cmd
	}
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := command(args...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}

	if out, errOut, code := run("piped through cat\n", "exec", "-i", app, "cat"); out != "piped through cat\n" || code != 0 {
		t.Errorf("crictl exec -i cat: %q, exit %d\n%s", out, code, errOut)
	}
	if out, errOut, code := run("", "exec", app, "sh", "-c", "echo before; exit 3"); out != "before\n" || code == 0 || !strings.Contains(errOut, "exit code 3") {
		t.Errorf("crictl exec of a failing command: %q, exit %d\n%s", out, code, errOut)
	}
	// crictl exec -it wants a terminal: give it one, whose size reaches the
	// container's.
	if out, code := testterm.Run(t, command("exec", "-it", app, "sh", "-c", "stty size; tty"), ""); !strings.Contains(out, "30 100\r\n/dev/pts/") || code != 0 {
		t.Errorf("crictl exec -it: %q, exit %d", out, code)
	}

	// crictl attach -i: a line written to its stdin comes back from cat.
	attach := command("attach", "-i", cat)
	stdin, err := attach.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := attach.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { attach.Process.Kill(); attach.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// crictl may connect after the first line: write until one comes back.
	got := ""
	deadline := time.After(20 * time.Second)
	for got != "via crictl attach" {
		if _, err := io.WriteString(stdin, "via crictl attach\n"); err != nil {
			t.Fatal(err)
		}
		select {
		case got = <-lines:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("nothing came back through crictl attach")
		}
	}
	stdin.Close() // the end of its input ends the attach
	if err := attach.Wait(); err != nil {
		t.Errorf("crictl attach: %v", err)
	}

	// crictl port-forward: a local port on 127.0.0.1 reaches httpd in the pod.
	pf := command("port-forward", pod, "0:8080")
	pfOut, err := pf.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Process.Kill(); pf.Wait() })
	forwarding := regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) -> 8080`)
	local := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pfOut)
		for sc.Scan() {
			if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
				local <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-local:
	case <-time.After(30 * time.Second):
		t.Fatal("crictl port-forward did not say where it listens")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	waitFor(t, "/healthz through crictl port-forward", 20*time.Second, func() bool {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && string(body) == "ok\n"
	})
}
