// Command cluster benchmarks nodekit-kubelet in cluster mode against the
// upstream kubelet (v1.37.2, built by `make kubelet-anchor` as the control
// plane is), each the only node of a control plane of its own
// (internal/controlplane, with an audit log), one agent at a time:
//
//   - nodekit: nodekit-kubelet with its embedded shim;
//   - kubelet-containerd: the upstream kubelet on Debian's containerd 1.6;
//   - kubelet-nodekit-cri: the upstream kubelet on bin/nodekit-cri.
//
// For each: 50 pods (plus a warm-up) created through the API with
// spec.nodeName set, one at a time, timed from the create call's return to the
// watch event showing the pod Running (and Ready); each pod's container then
// waits on a FIFO in a hostPath, and the time from the benchmark's write into
// it to the watch event showing the pod Succeeded is the exit → status
// latency. Then 100 idle pods: the agent's API requests per minute over a
// window (the apiserver's audit log; watches counted apart), and the CPU and
// memory of the agent, its runtime and their per-pod helpers. It prints
// Markdown tables with the ratios nodekit / kubelet and writes JSON.
//
// Run it as root from the repository root after `make build images
// controlplane kubelet-anchor` (or `sudo make bench-cluster`):
//
//	go run ./bench/cluster [-agents nodekit,kubelet-containerd,kubelet-nodekit-cri] [-pods 50] [-idle-pods 100] [-window 2m] [-json FILE]
//
// Everything it creates lives in /tmp/nkcl-<id>, under the cgroup /nkcl-<id>
// and on a bridge of its own, and is removed at the end, on failure or
// interrupt, with what the upstream kubelet changes outside them (kernel
// settings, links in /var/log/containers). See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/nodekit-dev/nodekit/bench/internal/interrupt"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/internal/controlplane"
)

type options struct {
	bin, images, controlPlane string
	agents                    []string
	pods, idlePods            int
	window, settle            time.Duration
	jsonOut, logs             string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	var agents string
	fs.StringVar(&o.bin, "bin", "bin", "directory of nodekit-kubelet, nodekit-cri, nodekit-monitor and runc")
	fs.StringVar(&o.images, "images", "_output/images", "directory of busybox.tar and pause.tar")
	fs.StringVar(&o.controlPlane, "controlplane-dir", os.Getenv(controlplane.DirEnv), "where `make controlplane kubelet-anchor` built the control plane and the kubelet (its bin/)")
	fs.StringVar(&agents, "agents", strings.Join(allAgents, ","), "agents to measure, one after the other")
	fs.IntVar(&o.pods, "pods", 50, "pods for create → Running and exit → Succeeded, one at a time (plus one warm-up; 0: skip)")
	fs.IntVar(&o.idlePods, "idle-pods", 100, "idle pods for the API requests, CPU and memory (0: skip)")
	fs.DurationVar(&o.window, "window", 2*time.Minute, "sampling window with the idle pods")
	fs.DurationVar(&o.settle, "settle", 2*time.Minute, "wait after the idle pods are Running, before the window (the upstream kubelet patches each pod's status once more 70–90 s after its start)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.logs, "logs", "", "copy the agents', runtimes' and control planes' logs into this directory before cleanup")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, a := range strings.Split(agents, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		known := false
		for _, k := range allAgents {
			known = known || a == k
		}
		if !known {
			return o, fmt.Errorf("-agents: unknown %q (want %s)", a, strings.Join(allAgents, ", "))
		}
		o.agents = append(o.agents, a)
	}
	if len(o.agents) == 0 {
		return o, fmt.Errorf("-agents: none")
	}
	if o.pods < 0 || o.idlePods < 0 || o.window <= 0 {
		return o, fmt.Errorf("-pods, -idle-pods: want ≥ 0; -window: want > 0")
	}
	var err error
	for _, p := range []*string{&o.bin, &o.images} {
		if *p, err = filepath.Abs(*p); err != nil {
			return o, err
		}
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(2)
	}
	os.Exit(run(o))
}

func run(o options) (code int) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "cluster: needs root (runtimes, cgroups, mounts): run `sudo make bench-cluster`")
		return 2
	}
	if o.controlPlane == "" {
		fmt.Fprintf(os.Stderr, "cluster: no control plane: give -controlplane-dir or $%s (make bench-cluster does)\n", controlplane.DirEnv)
		return 2
	}
	need := []string{filepath.Join(o.images, "busybox.tar"), filepath.Join(o.images, "pause.tar"),
		filepath.Join(o.bin, "nodekit-kubelet"), filepath.Join(o.bin, "nodekit-cri"), filepath.Join(o.bin, "nodekit-monitor"), filepath.Join(o.bin, "runc"),
		filepath.Join(o.controlPlane, "bin", "kubelet")}
	for _, f := range need {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(os.Stderr, "cluster: %v (run `make build images controlplane kubelet-anchor` first)\n", err)
			return 2
		}
	}
	// client-go's and cri-client's klog lines would interleave with the report.
	klog.SetOutput(os.Stderr)
	ctx, cancel := interrupt.Context(context.Background(), "cluster", os.Stderr)
	defer cancel()

	w, err := newWorkspace(o.bin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	fmt.Printf("workspace %s, cgroup parent %s\n", w.dir, w.cgroup)
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "cluster: panic: %v\n%s", p, debug.Stack())
			code = 1
		}
		interrupt.Ignore()
		if o.logs != "" {
			if n, err := copyLogs(w.dir, o.logs); err != nil {
				fmt.Fprintf(os.Stderr, "cluster: copying logs: %v\n", err)
			} else {
				fmt.Printf("copied %d log files to %s\n", n, o.logs)
			}
		}
		w.cleanup()
	}()
	net, err := w.newNetwork()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	res := &results{Started: time.Now().UTC().Format(time.RFC3339), Environment: environment(o)}
	for _, kind := range o.agents {
		r, err := runAgent(ctx, w, o, net, kind)
		if r != nil {
			res.Agents = append(res.Agents, r)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cluster: %s: %v\n", kind, err)
			if o.logs == "" {
				o.logs = "_output/bench/cluster-logs"
			}
			code = 1
			break
		}
	}
	report(os.Stdout, res)
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, res); err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			code = 1
		}
	}
	return code
}

// results is the JSON output.
type results struct {
	Started     string            `json:"started"`
	Environment map[string]string `json:"environment"`
	Agents      []*agentResult    `json:"agents"`
}

func writeJSON(path string, res *results) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func environment(o options) map[string]string {
	env := map[string]string{
		"kubelet":  versionOf(filepath.Join(o.controlPlane, "bin", "kubelet"), "--version"),
		"agents":   strings.Join(o.agents, ","),
		"pods":     fmt.Sprint(o.pods),
		"idlePods": fmt.Sprint(o.idlePods),
		"window":   o.window.String(),
		"settle":   o.settle.String(),
	}
	if la, err := procfs.LoadAvg(); err == nil {
		env["loadavg"] = la
	}
	if out, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		env["kernel"] = strings.TrimSpace(string(out))
	}
	return env
}

// copyLogs copies the *.log files of the workspace (agents, runtimes, audit
// logs; not the containers' logs) into dir.
func copyLogs(root, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	var n int
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case "logs", "pods", "cri", "root", "ctd-root":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".log") || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if err := os.WriteFile(filepath.Join(dir, strings.ReplaceAll(rel, "/", "_")), data, 0o644); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
