package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
	"github.com/nodekit-dev/nodekit/internal/testnet"
	"github.com/nodekit-dev/nodekit/internal/testshim"
	"github.com/nodekit-dev/nodekit/internal/testterm"
)

// The end-to-end test runs the agent on nodekit's real CRI shim (in this
// process, with real runc, a CNI network of its own, its own directories and
// cgroup root) with two static pods, and drives every command against it as a
// user would; `exec -it` runs this test binary as the command line on a
// pseudo-terminal (TestMain).

const (
	e2eNode = "node-cli"
	busybox = "nodekit.local/busybox:latest"
)

// runMainEnv makes the test binary the command line (for exec on a terminal).
const runMainEnv = "NODEKIT_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(Main(context.Background(), NewCommand(Options{}), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// e2eAgent is the test's agent; root is its --root-dir.
type e2eAgent struct {
	t    *testing.T
	root string
	net  *testnet.Network
}

func startE2EAgent(t *testing.T, pods ...*v1.Pod) *e2eAgent {
	t.Helper()
	testenv.RequireRoot(t)
	klog.SetSlogLogger(slog.New(slog.DiscardHandler)) // cri-client's klog lines at every stop
	base := testenv.TempDir(t, "nkcli-")
	var b [4]byte
	rand.Read(b[:])
	cgroupRoot := "/nodekit-cli-test-" + hex.EncodeToString(b[:])
	state := filepath.Join(base, "state")
	logs := &testenv.LogBuffer{}
	// Checks of what is left, once the agent, the shim and the network are
	// gone (cleanups run last-registered first).
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shim and agent log:\n%s", logs.String())
		}
		leakcheck.NoMounts(t, base)
		leakcheck.NoMonitors(t, state)
		leakcheck.NoRuncState(t, state)
		leakcheck.NoCgroups(t, cgroupRoot, "kubepods", "kubepods/besteffort", "kubepods/burstable", "shim")
		leakcheck.RemoveCgroups(t, cgroupRoot)
	})
	n := testnet.New(t, "nkcli", "10.0.0.0/10")
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	shim := testshim.Start(t, testshim.Options{
		Dir: base, State: state, CgroupParent: cgroupRoot + "/shim",
		CNIConfDir: n.ConfDir, CNIBinDirs: testnet.BinDirs,
		Logger: log.With("component", "shim"), Images: []string{"busybox"},
	})
	manifests := filepath.Join(base, "manifests")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		data, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(manifests, p.Name+".yaml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := agent.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.RootDir = filepath.Join(base, "root")
	cfg.NodeName, cfg.NodeIP = e2eNode, "127.0.0.1"
	k := &cfg.Kubelet
	k.StaticPodPath, k.PodLogsDir, k.CgroupRoot = manifests, filepath.Join(base, "logs"), cgroupRoot
	k.Address, k.Port = "127.0.0.1", 0
	off := int32(0)
	k.HealthzPort = &off
	a, err := agent.New(agent.Options{Config: cfg, Runtime: shim.Runtime, Images: shim.Images,
		Logger: log.With("component", "agent"), StopPodsOnExit: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { // before the shim stops: every pod stopped
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(3 * time.Minute):
			t.Errorf("the agent did not stop within 3 minutes")
		}
	})
	return &e2eAgent{t: t, root: cfg.RootDir, net: n}
}

// run runs the command line in this process.
func (e *e2eAgent) run(args ...string) (string, string, int) {
	e.t.Helper()
	return runCLI(e.t.Context(), nil, withRootDir(args, e.root)...)
}

// pod reads a pod from the agent.
func (e *e2eAgent) pod(name string) *v1.Pod {
	list, err := newClient(agent.LocalSocket(e.root)).pods(e.t.Context())
	if err != nil {
		return nil
	}
	for _, p := range list.Items {
		if p.Name == name {
			return &p
		}
	}
	return nil
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func staticPod(name string, restart v1.RestartPolicy, c v1.Container) *v1.Pod {
	c.Image, c.ImagePullPolicy = busybox, v1.PullNever
	return &v1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec: v1.PodSpec{RestartPolicy: restart, TerminationGracePeriodSeconds: new(int64), Containers: []v1.Container{c},
			Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}},
	}
}

// TestE2ECommands: every command against a running agent with a web server
// that ticks and a container that exits 1 at once, restarted with back-off.
func TestE2ECommands(t *testing.T) {
	web := staticPod("web", v1.RestartPolicyAlways, v1.Container{Name: "httpd",
		Command:        []string{"sh", "-c", `echo started; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done`},
		Env:            []v1.EnvVar{{Name: "GREETING", Value: "hello"}},
		LivenessProbe:  &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 5},
		ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 1},
		VolumeMounts:   []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
	})
	// Each instance counts itself in the pod's emptyDir and says which it is.
	crash := staticPod("crashloop", v1.RestartPolicyAlways, v1.Container{Name: "app",
		Command:      []string{"sh", "-c", `n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo "instance $n"; exit 1`},
		VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
	})
	e := startE2EAgent(t, web, crash)
	webName, crashName := "web-"+e2eNode, "crashloop-"+e2eNode
	waitFor(t, "web running and ready, crashloop restarted once", 2*time.Minute, func() bool {
		w, c := e.pod(webName), e.pod(crashName)
		return w != nil && c != nil && len(w.Status.ContainerStatuses) == 1 && w.Status.ContainerStatuses[0].Ready &&
			len(c.Status.ContainerStatuses) == 1 && c.Status.ContainerStatuses[0].RestartCount >= 1
	})

	t.Run("get pods", func(t *testing.T) {
		out, errOut, code := e.run("get", "pods", "-o", "wide")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{
			`(?m)^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$`,
			`(?m)^crashloop-node-cli\s+0/1\s+(CrashLoopBackOff|Error|Running)\s+[1-9]\d* \(\S+ ago\)\s+\S+\s+10\.\d+\.\d+\.\d+\s+node-cli\s+<none>\s+<none>$`,
			`(?m)^web-node-cli\s+1/1\s+Running\s+0\s+\S+\s+10\.\d+\.\d+\.\d+\s+node-cli\s+<none>\s+<none>$`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("get pods -o wide lacks %s:\n%s", want, out)
			}
		}
		if w := e.pod(webName); w == nil || !e.net.Contains(w.Status.PodIP) || !strings.Contains(out, " "+w.Status.PodIP+" ") {
			t.Errorf("web's IP is not in the test network's subnet %v:\n%s", e.net.Subnet, out)
		}
		// -o yaml parses back into the API's types.
		out, _, code = e.run("get", "pod", webName, "-o", "yaml")
		var p v1.Pod
		if err := yaml.UnmarshalStrict([]byte(out), &p); code != 0 || err != nil || p.Name != webName || p.Status.Phase != v1.PodRunning ||
			p.Spec.Containers[0].LivenessProbe == nil || p.Spec.NodeName != e2eNode {
			t.Errorf("get pod -o yaml: exit %d, %v\n%s", code, err, out)
		}
		out, _, code = e.run("get", "pods", "-o", "json")
		var l struct {
			Kind  string
			Items []v1.Pod
		}
		if err := yaml.Unmarshal([]byte(out), &l); code != 0 || err != nil || l.Kind != "List" || len(l.Items) != 2 {
			t.Errorf("get pods -o json: exit %d, %v\n%s", code, err, out)
		}
	})

	t.Run("get node", func(t *testing.T) {
		out, _, code := e.run("get", "node")
		for _, want := range []string{`(?m)^node-cli\s+Ready\s+<none>`, `(?m)^  MemoryPressure\s+False`, `(?m)^  cpu\s+\d+\s+\d+`,
			`(?m)^Runtime:\s+nodekit://`, `(?m)^  nodekit\.local/busybox:latest\s+\d`} {
			if code != 0 || !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("get node lacks %s (exit %d):\n%s", want, code, out)
			}
		}
		out, _, code = e.run("get", "node", "-o", "yaml")
		var n v1.Node
		if err := yaml.UnmarshalStrict([]byte(out), &n); code != 0 || err != nil || n.Name != e2eNode || len(n.Status.Conditions) == 0 {
			t.Errorf("get node -o yaml: exit %d, %v\n%s", code, err, out)
		}
	})

	t.Run("describe", func(t *testing.T) {
		out, _, code := e.run("describe", "pod", crashName)
		for _, want := range []string{
			`(?m)^Name:\s+crashloop-node-cli$`, `(?m)^Node:\s+node-cli/127\.0\.0\.1$`, `(?m)^Status:\s+Running$`,
			`(?m)^    Last State:\s+Terminated\n      Reason:\s+Error\n      Exit Code:\s+1\n      Started:\s+\S.*\n      Finished:\s+\S`,
			`(?m)^    Restart Count:\s+[1-9]`, `(?m)^    Mounts:\n      /data from data \(rw\)$`,
			`(?m)^  data:\n    Type:\s+EmptyDir`, `(?m)^QoS Class:\s+BestEffort$`, `(?m)^Timeline:`,
		} {
			if code != 0 || !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("describe pod %s lacks %s (exit %d):\n%s", crashName, want, code, out)
			}
		}
		out, _, code = e.run("describe", "pod", webName)
		for _, want := range []string{`(?m)^    State:\s+Running$`, `(?m)^    Ready:\s+True$`,
			`(?m)^    Liveness:\s+exec \[true\] delay=0s timeout=1s period=5s successThreshold=1 failureThreshold=3$`,
			`(?m)^      GREETING:\s+hello$`, `(?m)^  Ready\s+True $`} {
			if code != 0 || !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("describe pod %s lacks %s (exit %d):\n%s", webName, want, code, out)
			}
		}
	})

	t.Run("describe timeline", func(t *testing.T) {
		// The crash loop's back-off timeline: each death with its exit code,
		// the back-off delays doubling, the events the kubelet reports.
		if _, err := newClient(agent.LocalSocket(e.root)).timeline(t.Context(), "default", crashName); err != nil {
			t.Fatalf("the agent serves no timeline of %s: %v", crashName, err)
		}
		waitFor(t, "the crash loop's second back-off", 3*time.Minute, func() bool {
			c := e.pod(crashName)
			return c != nil && len(c.Status.ContainerStatuses) == 1 && c.Status.ContainerStatuses[0].RestartCount >= 2 &&
				c.Status.ContainerStatuses[0].State.Waiting != nil
		})
		out, _, code := e.run("describe", "pod", crashName)
		for _, want := range []string{
			`(?m)^  Warning  BackOff  .*kubelet  spec\.containers\{app\}: Back-off restarting failed container app in pod crashloop-node-cli_default\(`,
			`(?m)^Timeline:  \(times from \S+\)\n  TIME\s+KIND\s+CONTAINER\s+WHAT: WHY \[TOOK\] — MESSAGE$`,
			`(?m)^  \+\S+\s+Source\s+`,
			`(?m)^  \+\S+\s+PLEG\s+app\s+ContainerDied.* exit code 1$`,
			`(?m)^  \+\S+\s+BackOff\s+app\s+.*\[10s\]`,
			`(?m)^  \+\S+\s+BackOff\s+app\s+.*\[20s\]`,
		} {
			if code != 0 || !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("describe pod %s lacks %s (exit %d):\n%s", crashName, want, code, out)
			}
		}
	})

	t.Run("logs", func(t *testing.T) {
		instance := regexp.MustCompile(`^instance (\d+)\n$`)
		number := func(args ...string) int {
			t.Helper()
			out, errOut, code := e.run(args...)
			m := instance.FindStringSubmatch(out)
			if code != 0 || m == nil {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
			n, _ := strconv.Atoi(m[1])
			return n
		}
		// The previous instance's output, then the current (latest) one's,
		// which came later (more restarts may have happened in between).
		prev := number("logs", crashName, "--previous")
		cur := number("logs", crashName)
		if prev < 1 || cur <= prev {
			t.Errorf("logs --previous says instance %d, logs instance %d", prev, cur)
		}
		out, _, code := e.run("logs", webName, "--tail", "1", "--timestamps")
		if code != 0 || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+ tick \d+\n$`).MatchString(out) {
			t.Errorf("logs --tail 1 --timestamps: exit %d, %q", code, out)
		}
	})

	t.Run("logs -f", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cmd := NewCommand(Options{})
		var out syncBuffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		done := make(chan int, 1)
		go func() { done <- Main(ctx, cmd, withRootDir([]string{"logs", "-f", "--tail", "1", webName}, e.root)) }()
		tick := regexp.MustCompile(`tick (\d+)\n`)
		var first int
		waitFor(t, "two more ticks followed", 3*time.Minute, func() bool {
			m := tick.FindAllStringSubmatch(out.String(), -1)
			if len(m) == 0 {
				return false
			}
			first, _ = strconv.Atoi(m[0][1])
			last, _ := strconv.Atoi(m[len(m)-1][1])
			return last >= first+2
		})
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("logs -f ended with %d: %s", code, out.String())
		}
	})

	t.Run("exec", func(t *testing.T) {
		out, errOut, code := e.run("exec", webName, "--", "sh", "-c", `echo $GREETING from $(hostname)`)
		if code != 0 || out != "hello from web-node-cli\n" {
			t.Errorf("exec: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		out, _, code = runCLI(t.Context(), strings.NewReader("echo $((6*7))\n"), withRootDir([]string{"exec", "-i", webName, "--", "sh"}, e.root)...)
		if code != 0 || out != "42\n" {
			t.Errorf("exec -i: exit %d, stdout %q", code, out)
		}
		_, errOut, code = e.run("exec", webName, "--", "sh", "-c", "exit 7")
		if code != 7 || errOut != "command terminated with exit code 7\n" {
			t.Errorf("exec exit 7: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("exec -it", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], withRootDir([]string{"exec", "-it", webName, "--", "sh"}, e.root)...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		// The shell gets the terminal's size (testterm's 30x100; it is sent
		// once the session is up: the shell waits for it) and runs what is
		// typed; its exit code is the command line's.
		term, code := testterm.Run(t, cmd,
			`until [ "$(stty size)" != "0 0" ]; do sleep 0.1; done; echo "size=$(stty size)"; echo hello-$((6*7)); exit 3`+"\n")
		if code != 3 || !strings.Contains(term, "size=30 100") || !strings.Contains(term, "hello-42") {
			t.Errorf("exec -it: exit %d, terminal:\n%s", code, term)
		}
	})

	t.Run("top", func(t *testing.T) {
		var out, errOut string
		var code int
		waitFor(t, "the pods' metrics", 3*time.Minute, func() bool {
			out, errOut, code = e.run("top", "pods")
			return code == 0 && strings.Contains(out, webName)
		})
		if !regexp.MustCompile(`(?m)^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\n`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^web-node-cli\s+\d+m\s+\d+Mi$`).MatchString(out) {
			t.Errorf("top pods: exit %d, stderr %q\n%s", code, errOut, out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, args := range [][]string{{"describe", "pod", "nope"}, {"logs", "nope"}, {"exec", "nope", "--", "sh"}, {"get", "pod", "nope"}} {
			out, errOut, code := e.run(args...)
			if code != 1 || out != "" || errOut != `Error from server (NotFound): pods "nope" not found`+"\n" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
		}
		_, errOut, code := e.run("logs", webName, "-c", "nope")
		if code != 1 || errOut != "error: container nope is not valid for pod web-node-cli out of: httpd\n" {
			t.Errorf("logs -c nope: exit %d, %q", code, errOut)
		}
	})
}
