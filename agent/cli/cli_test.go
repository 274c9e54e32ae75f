package cli

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestHelpAndVersion: --help shows the description, the commands and the
// daemon's flags under their group titles; --version the version.
func TestHelpAndVersion(t *testing.T) {
	kubelet := flag.NewFlagSet("kubelet", flag.ContinueOnError)
	kubelet.String("pod-manifest-path", "", "directory of static pod manifests")
	kubelet.Duration("sync-frequency", 0, "how often pods are synced")
	own := flag.NewFlagSet("own", flag.ContinueOnError)
	own.Bool("stop-pods-on-exit", false, "stop every pod before exiting")
	cmd := NewCommand(Options{Version: "0.1.0-dev", Flags: []FlagGroup{{"Kubelet flags", kubelet}, {"nodekit flags", own}}})
	var out strings.Builder
	cmd.SetOut(&out)
	if code := Main(t.Context(), cmd, []string{"--help"}); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	help := out.String()
	for _, want := range []string{
		"Usage:\n  nodekit-kubelet [flags]\n  nodekit-kubelet [command]\n",
		"\nAvailable Commands:\n", "  describe ", "  exec ", "  get ", "  logs ", "  top ",
		"\nKubelet flags:\n      --pod-manifest-path string   directory of static pod manifests\n",
		"      --sync-frequency duration    how often pods are synced\n", // no "(default 0s)"
		"\nnodekit flags:\n      --stop-pods-on-exit   stop every pod before exiting\n",
		"\nOther flags:\n  -h, --help      help for nodekit-kubelet\n      --version   Print version information and quit\n",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}

	out.Reset()
	cmd = NewCommand(Options{Version: "0.1.0-dev"})
	cmd.SetOut(&out)
	if code := Main(t.Context(), cmd, []string{"--version"}); code != 0 {
		t.Fatalf("--version: exit %d", code)
	}
	if !regexp.MustCompile(`^nodekit-kubelet v0\.1\.0-dev \((commit [0-9a-f]+(-dirty)?, )?kubelet API v1\.\d+\.\d+\)\n$`).MatchString(out.String()) {
		t.Errorf("--version = %q", out.String())
	}
}

// TestDaemonFlags: the daemon's flags are parsed as the kubelet's and each
// given one is recorded in its Go FlagSet, as if that set had parsed it.
func TestDaemonFlags(t *testing.T) {
	fs := flag.NewFlagSet("kubelet", flag.ContinueOnError)
	path := fs.String("pod-manifest-path", "", "")
	sync := fs.Duration("sync-frequency", time.Minute, "")
	stop := fs.Bool("stop-pods-on-exit", false, "")
	port := fs.Int("port", 10250, "")
	var visited []string
	cmd := NewCommand(Options{Flags: []FlagGroup{{"Kubelet flags", fs}}, Run: func(ctx context.Context) error {
		fs.Visit(func(f *flag.Flag) { visited = append(visited, f.Name) })
		return nil
	}})
	code := Main(t.Context(), cmd, []string{"--pod-manifest-path", "/etc/pods", "--sync-frequency=20s", "--stop-pods-on-exit"})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if *path != "/etc/pods" || *sync != 20*time.Second || !*stop || *port != 10250 {
		t.Errorf("values: %q %v %v %d", *path, *sync, *stop, *port)
	}
	if strings.Join(visited, ",") != "pod-manifest-path,stop-pods-on-exit,sync-frequency" {
		t.Errorf("set flags seen by Visit: %v", visited)
	}

	var errOut strings.Builder
	cmd = NewCommand(Options{Flags: []FlagGroup{{"Kubelet flags", flag.NewFlagSet("k", flag.ContinueOnError)}}, Run: func(context.Context) error { return nil }})
	cmd.SetErr(&errOut)
	if code := Main(t.Context(), cmd, []string{"--no-such-flag"}); code != 1 ||
		errOut.String() != "error: unknown flag: --no-such-flag\nSee 'nodekit-kubelet --help' for usage.\n" {
		t.Errorf("unknown flag: exit %d, %q", code, errOut.String())
	}
}

// TestNoAgent: without an agent at --root-dir each command says where it
// looked and what to do, and exits 1.
func TestNoAgent(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"get", "pods"}, {"get", "node"}, {"describe", "pod", "x"}, {"logs", "x"}, {"exec", "x", "--", "sh"}, {"top", "pods"}} {
		out, errOut, code := runCLI(t.Context(), nil, withRootDir(args, dir)...)
		want := "error: no agent at " + filepath.Join(dir, "kubelet.sock") + ": is nodekit-kubelet running with --root-dir " + dir + "?"
		if code != 1 || out != "" || !strings.HasPrefix(errOut, want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", args, code, out, errOut, want)
		}
	}
	// A socket nobody listens on.
	sock := filepath.Join(dir, "kubelet.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t.Context(), nil, "get", "pods", "--root-dir", dir)
	if code != 1 || !strings.Contains(errOut, "the agent at "+sock+" is not running (connection refused)") {
		t.Errorf("dead socket: exit %d, %q", code, errOut)
	}
}

// TestPodNotFound: every command names a pod that is not there as kubectl
// does, and exits 1.
func TestPodNotFound(t *testing.T) {
	f := newFakeAgent(t)
	f.setPods(webPod())
	for _, args := range [][]string{
		{"get", "pods", "nope"}, {"get", "pod/nope", "-o", "yaml"}, {"describe", "pod", "nope"},
		{"logs", "nope"}, {"exec", "nope", "--", "sh"}, {"top", "pod", "nope"},
		{"describe", "pod", "web-node-a", "-n", "other"},
	} {
		want := `Error from server (NotFound): pods "nope" not found` + "\n"
		if args[len(args)-1] == "other" {
			want = `Error from server (NotFound): pods "web-node-a" not found` + "\n"
		}
		out, errOut, code := f.run(t, args...)
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	_, errOut, code := f.run(t, "get", "node", "other-node")
	if code != 1 || errOut != `Error from server (NotFound): nodes "other-node" not found`+"\n" {
		t.Errorf("get node other-node: exit %d, %q", code, errOut)
	}
}

// TestGetPods: the table, -o wide, name, yaml and json (both parse back into
// the API types), namespaces, selectors.
func TestGetPods(t *testing.T) {
	f := newFakeAgent(t)
	sys := webPod()
	sys.Namespace, sys.Name = "kube-system", "dns-node-a"
	sys.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/lb"}}
	f.setPods(webPod(), crashPod(), sys)

	out, _, code := f.run(t, "get", "pods", "-o", "wide")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	header := regexp.MustCompile(`^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$`)
	if code != 0 || len(lines) != 4 || !header.MatchString(lines[0]) {
		t.Fatalf("get pods -o wide: exit %d\n%s", code, out)
	}
	for i, want := range []string{
		`^default\s+crashloop-node-a\s+0/1\s+CrashLoopBackOff\s+2 \(\S+ ago\)\s+\S+\s+10\.88\.0\.6\s+node-a\s+<none>\s+<none>$`,
		`^default\s+web-node-a\s+1/1\s+Running\s+0\s+\S+\s+10\.88\.0\.5\s+node-a\s+<none>\s+<none>$`,
		`^kube-system\s+dns-node-a\s+1/1\s+Running\s+0\s+\S+\s+10\.88\.0\.5\s+node-a\s+<none>\s+0/1$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("row %d = %q, want %s", i+1, lines[i+1], want)
		}
	}

	out, _, _ = f.run(t, "get", "pods", "-n", "default")
	if strings.Contains(out, "NAMESPACE") || strings.Contains(out, "dns-node-a") || !strings.Contains(out, "web-node-a") {
		t.Errorf("get pods -n default:\n%s", out)
	}
	out, _, _ = f.run(t, "get", "pods", "-l", "app=web", "-o", "name")
	if out != "pod/web-node-a\npod/dns-node-a\n" { // by namespace, then name
		t.Errorf("get pods -l app=web -o name = %q", out)
	}
	_, errOut, code := f.run(t, "get", "pods", "-n", "empty")
	if code != 0 || errOut != "No resources found in empty namespace.\n" {
		t.Errorf("no pods: exit %d, %q", code, errOut)
	}

	// -o yaml of the list, and of one pod, parse back into the API's types.
	out, _, code = f.run(t, "get", "pods", "-o", "yaml")
	var l struct {
		APIVersion, Kind string
		Items            []v1.Pod
		Metadata         struct{ ResourceVersion string }
	}
	if err := yaml.UnmarshalStrict([]byte(out), &l); code != 0 || err != nil || l.Kind != "List" || len(l.Items) != 3 {
		t.Fatalf("get pods -o yaml: exit %d, %v\n%s", code, err, out)
	}
	if l.Items[0].Kind != "Pod" || l.Items[0].APIVersion != "v1" || l.Items[0].Name != "crashloop-node-a" ||
		l.Items[0].Status.ContainerStatuses[0].LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("first item: %+v", l.Items[0])
	}
	for _, format := range []string{"yaml", "json"} {
		out, _, code = f.run(t, "get", "pod", "web-node-a", "-o", format)
		var p v1.Pod
		if err := yaml.UnmarshalStrict([]byte(out), &p); code != 0 || err != nil || p.Kind != "Pod" || p.Name != "web-node-a" || p.Status.PodIP != "10.88.0.5" {
			t.Errorf("get pod web-node-a -o %s: exit %d, %v\n%s", format, code, err, out)
		}
	}
	if format := "json"; !strings.HasPrefix(out, "{\n    \"kind\": \"Pod\",\n    \"apiVersion\": \"v1\",\n") {
		t.Errorf("-o %s is not kubectl's (4 spaces):\n%s", format, out)
	}
	_, errOut, code = f.run(t, "get", "pods", "-o", "jsonpath={.items}")
	if code != 1 || !strings.HasPrefix(errOut, `error: unable to match a printer suitable for the output format "jsonpath={.items}"`) {
		t.Errorf("bad -o: exit %d, %q", code, errOut)
	}
}

// TestGetPodsWatch: -w prints the table, then a pod again each time its
// status changes, until interrupted.
func TestGetPodsWatch(t *testing.T) {
	defer func(d time.Duration) { pollInterval = d }(pollInterval)
	pollInterval = time.Millisecond
	f := newFakeAgent(t)
	f.polled = make(chan struct{})
	web, crash := webPod(), crashPod()
	f.setPods(web, crash)
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, _, code := f.runContext(ctx, "get", "pods", "-w")
		done <- result{out, code}
	}()
	// Each receive lets one poll read the pods as they are then.
	<-f.polled // the table
	<-f.polled // nothing changed
	crash.Status.ContainerStatuses[0].RestartCount = 3
	f.setPods(web, crash)
	<-f.polled // crash changed
	f.setPods(web)
	<-f.polled // crash went
	<-f.polled // the next poll: what the last one found was printed
	cancel()
	r := <-done
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if r.code != 0 || len(lines) != 5 {
		t.Fatalf("get pods -w: exit %d\n%s", r.code, r.out)
	}
	for i, want := range []string{`^NAME\s+READY`, `^crashloop-node-a\s+0/1\s+CrashLoopBackOff\s+2 `, `^web-node-a\s+1/1\s+Running`,
		`^crashloop-node-a\s+0/1\s+CrashLoopBackOff\s+3 `, `^crashloop-node-a\s+0/1\s+CrashLoopBackOff\s+3 `} {
		if !regexp.MustCompile(want).MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i, lines[i], want)
		}
	}
}

// TestGetNode: the node's table with its details, and -o yaml that parses
// back into a v1.Node.
func TestGetNode(t *testing.T) {
	f := newFakeAgent(t)
	n := &v1.Node{}
	n.Name = "node-a"
	n.CreationTimestamp.Time = t0
	n.Status.NodeInfo = v1.NodeSystemInfo{KubeletVersion: "v1.37.2-nodekit", ContainerRuntimeVersion: "nodekit://0.1.0-dev", KernelVersion: "6.1.0", OSImage: "Debian GNU/Linux 12 (bookworm)"}
	n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}}
	n.Status.Capacity = v1.ResourceList{v1.ResourceCPU: mustQuantity("2")}
	n.Status.Allocatable = v1.ResourceList{v1.ResourceCPU: mustQuantity("2")}
	n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.0.2.2"}}
	n.Status.Images = []v1.ContainerImage{{Names: []string{"nodekit.local/busybox@sha256:0123", "nodekit.local/busybox:latest"}, SizeBytes: 1 << 20}}
	f.node = n
	out, _, code := f.run(t, "get", "node", "-o", "wide")
	for _, want := range []string{
		`(?m)^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME$`,
		`(?m)^node-a\s+Ready\s+<none>\s+\S+\s+v1\.37\.2-nodekit\s+192\.0\.2\.2\s+<none>\s+Debian GNU/Linux 12 \(bookworm\)\s+6\.1\.0\s+nodekit://0\.1\.0-dev$`,
		`(?m)^  Ready\s+True\s+\S+ ago\s+KubeletReady\s+kubelet is posting ready status$`,
		`(?m)^  cpu\s+2\s+2$`, `(?m)^Runtime:\s+nodekit://0\.1\.0-dev$`, `(?m)^Images:\s+1$`,
		`(?m)^  nodekit\.local/busybox:latest\s+1\.0Mi$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("get node -o wide lacks %s (exit %d):\n%s", want, code, out)
		}
	}
	out, _, code = f.run(t, "get", "nodes", "-o", "yaml")
	var back v1.Node
	if err := yaml.UnmarshalStrict([]byte(out), &back); code != 0 || err != nil || back.Kind != "Node" || back.Name != "node-a" || len(back.Status.Images) != 1 {
		t.Errorf("get node -o yaml: exit %d, %v\n%s", code, err, out)
	}
}
