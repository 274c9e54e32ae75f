package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	utilexec "k8s.io/utils/exec"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/server"
)

// execRuntime is the runtime behind a real CRI streaming server: exec writes
// its command, copies its stdin, writes to stderr, and exits with the code
// of `exit N`.
type execRuntime struct {
	mu    sync.Mutex
	execs []string // "container: cmd tty=..."
}

func (rt *execRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, _ <-chan remotecommand.TerminalSize) error {
	rt.mu.Lock()
	rt.execs = append(rt.execs, fmt.Sprintf("%s: %s tty=%v stdin=%v", id, strings.Join(cmd, " "), tty, in != nil))
	rt.mu.Unlock()
	if len(cmd) == 2 && cmd[0] == "exit" {
		var code int
		if _, err := fmt.Sscan(cmd[1], &code); err != nil {
			return err
		}
		return utilexec.CodeExitError{Err: errors.New("exited"), Code: code}
	}
	fmt.Fprintf(out, "ran %s\n", strings.Join(cmd, " "))
	if in != nil {
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
	}
	if errw != nil {
		fmt.Fprintln(errw, "to stderr")
	}
	return nil
}

func (rt *execRuntime) Attach(context.Context, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommand.TerminalSize) error {
	return errors.New("not in this test")
}

func (rt *execRuntime) PortForward(context.Context, string, int32, io.ReadWriteCloser) error {
	return errors.New("not in this test")
}

// execProvider is the agent's API (package server) over pods whose
// containers run in execRuntime.
type execProvider struct {
	pods []*v1.Pod
	lib  streaming.Server
}

func (p *execProvider) GetPods() []*v1.Pod                                { return p.pods }
func (p *execProvider) GetRunningPods(context.Context) ([]*v1.Pod, error) { return p.pods, nil }
func (p *execProvider) Summary(context.Context) (*statsapi.Summary, error) {
	return &statsapi.Summary{}, nil
}
func (p *execProvider) GetContainerLogPath(string, string, string, bool) (string, error) {
	return "", server.ErrNotFound
}
func (p *execProvider) GetAttach(context.Context, string, string, types.UID, string, server.StreamOptions) (*url.URL, error) {
	return nil, server.ErrNotFound
}
func (p *execProvider) GetPortForward(context.Context, string, string, types.UID, []int32) (*url.URL, error) {
	return nil, server.ErrNotFound
}
func (p *execProvider) RunInContainer(context.Context, string, string, types.UID, string, []string) ([]byte, error) {
	return nil, server.ErrNotFound
}

func (p *execProvider) GetExec(_ context.Context, ns, pod string, _ types.UID, container string, cmd []string, o server.StreamOptions) (*url.URL, error) {
	resp, err := p.lib.GetExec(&runtimeapi.ExecRequest{ContainerId: ns + "/" + pod + "/" + container, Cmd: cmd,
		Tty: o.TTY, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return nil, err
	}
	return url.Parse(resp.Url)
}

// execAgent serves the agent's real API on <root>/kubelet.sock, exec
// sessions going to a real CRI streaming server.
func execAgent(t *testing.T, pods ...*v1.Pod) (string, *execRuntime) {
	t.Helper()
	rt := &execRuntime{}
	var lib streaming.Server
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { lib.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	cfg := streaming.DefaultConfig
	cfg.Addr = ts.Listener.Addr().String()
	cfg.BaseURL, _ = url.Parse(ts.URL)
	var err error
	if lib, err = streaming.NewServer(cfg, rt); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	srv, err := server.New(server.Options{Provider: &execProvider{pods: pods, lib: lib}, Port: -1, HealthzPort: -1,
		LocalSocket: agent.LocalSocket(root), CertDir: filepath.Join(root, "pki")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return root, rt
}

// TestExec: a command run in a container through the agent's API, with
// standard input, its exit code as the command line's, and kubectl's errors
// before anything runs.
func TestExec(t *testing.T) {
	web, done := webPod(), crashPod()
	done.Name = "job-node-a"
	done.Status.Phase = v1.PodSucceeded
	root, rt := execAgent(t, &web, &done)
	run := func(stdin string, args ...string) (string, string, int) {
		return runCLI(t.Context(), strings.NewReader(stdin), withRootDir(args, root)...)
	}

	out, errOut, code := run("", "exec", "web-node-a", "--", "ls", "-l", "/")
	if code != 0 || out != "ran ls -l /\n" || errOut != "to stderr\n" {
		t.Errorf("exec ls: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = run("hello\n", "exec", "-i", "web-node-a", "-c", "httpd", "--", "cat")
	if code != 0 || out != "ran cat\nhello\n" {
		t.Errorf("exec -i cat: exit %d, stdout %q", code, out)
	}
	// -t without a terminal: as kubectl, said and ignored.
	out, errOut, code = run("typed\n", "exec", "-it", "web-node-a", "--", "sh")
	if code != 0 || out != "ran sh\ntyped\n" || !strings.HasPrefix(errOut, "Unable to use a TTY - input is not a terminal or the right kind of file\n") {
		t.Errorf("exec -it without a terminal: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = run("", "exec", "web-node-a", "--", "exit", "3")
	if code != 3 || errOut != "command terminated with exit code 3\n" {
		t.Errorf("exec exit 3: exit %d, stderr %q", code, errOut)
	}
	rt.mu.Lock()
	execs := strings.Join(rt.execs, "\n")
	rt.mu.Unlock()
	if want := "default/web-node-a/httpd: ls -l / tty=false stdin=false\ndefault/web-node-a/httpd: cat tty=false stdin=true\n" +
		"default/web-node-a/httpd: sh tty=false stdin=true\ndefault/web-node-a/httpd: exit 3 tty=false stdin=false"; execs != want {
		t.Errorf("the runtime ran\n%s\nwant\n%s", execs, want)
	}

	for _, tc := range []struct {
		args   []string
		errOut string
	}{
		{[]string{"exec", "web-node-a", "-c", "nope", "--", "sh"}, "error: container nope is not valid for pod web-node-a out of: httpd\n"},
		{[]string{"exec", "job-node-a", "--", "sh"}, "error: cannot exec into a container in a completed pod; current phase is Succeeded\n"},
		{[]string{"exec", "web-node-a", "sh"}, "error: exec [POD] [COMMAND] is not supported: use exec [POD] -- [COMMAND]\nSee 'nodekit-kubelet exec --help' for usage.\n"},
		{[]string{"exec", "web-node-a", "--"}, "error: you must specify at least one command for the container\nSee 'nodekit-kubelet exec --help' for usage.\n"},
	} {
		out, errOut, code := run("", tc.args...)
		if code != 1 || out != "" || errOut != tc.errOut {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errOut, tc.errOut)
		}
	}
}
