package main

// -mode critest: cri-tools' own benchmark suite (`critest -benchmark`) against
// nodekit-cri and containerd with the same parameters and the same images, then
// the exit-to-event latency (exits.go). See bench/README.md.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/bench/internal/daemon"
)

// critestRegistries are the registries critest pulls from; both runtimes mirror
// them to the local registry (as examples/critest configures nodekit-cri).
var critestRegistries = []string{"gcr.io", "registry.k8s.io", "k8s.gcr.io"}

const (
	// critestImage is critest's default test image, the one its lifecycle
	// benchmarks run (`top`); examples/critest builds a local equivalent.
	critestImage = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
	// critestCgroupParent is the cgroup parent critest gives pods when the
	// runtime does not answer RuntimeConfig with the cgroupfs driver
	// (common.DefaultSystemdCgroupSlice): containerd 1.6 has no RuntimeConfig.
	critestCgroupParent = "/test.slice"
)

// critestOptions are the flags of -mode critest.
type critestOptions struct {
	pods, containers int
	rounds           int
	exits, exitPods  int
	exitGap          time.Duration
	exitPoll         time.Duration
	exitMethods      []string
	critestBin       string
	runner           string
	out              string
	timeout          time.Duration

	methods string
}

func (c *critestOptions) register(fs *flag.FlagSet) {
	fs.IntVar(&c.pods, "critest-pods", 20, "-mode critest: podsNumber of critest's pod lifecycle benchmark (sequential)")
	fs.IntVar(&c.containers, "critest-containers", 20, "-mode critest: containersNumber of critest's container lifecycle benchmark (sequential)")
	fs.IntVar(&c.rounds, "critest-rounds", 4, "-mode critest: critest runs per runtime, alternating which runtime goes first (samples are pooled)")
	fs.IntVar(&c.exits, "exits", 100, "-mode critest: containers killed per runtime and method for the exit-to-event latency (0: skip)")
	fs.IntVar(&c.exitPods, "exit-pods", 10, "-mode critest: pods the -exits containers are spread over")
	fs.DurationVar(&c.exitGap, "exit-gap", 100*time.Millisecond, "-mode critest: pause before each kill, so the previous exit's clean-up is over")
	fs.DurationVar(&c.exitPoll, "exit-poll", 2*time.Millisecond, "-mode critest: ContainerStatus polling interval of the status method")
	fs.StringVar(&c.methods, "exit-methods", "events,status", "-mode critest: how exits are noticed: events (GetContainerEvents), status (polling ContainerStatus)")
	fs.StringVar(&c.critestBin, "critest", "", "-mode critest: the critest binary (default: critest in -bin; `make bench-critest` or `make $PWD/bin/critest` builds it)")
	fs.StringVar(&c.runner, "critest-runner", "", "-mode critest: a built examples/critest, which serves the test images (default: built into the workspace with `go build ./examples/critest`, from the repository root)")
	fs.StringVar(&c.out, "critest-out", "_output/bench/critest", "-mode critest: the image server's -out: its Debian package cache and configuration files")
	fs.DurationVar(&c.timeout, "critest-timeout", 20*time.Minute, "-mode critest: time limit of one critest run")
}

func (c *critestOptions) check(bin string) error {
	if c.pods < 1 || c.containers < 1 {
		return fmt.Errorf("-critest-pods, -critest-containers: want at least 1, got %d, %d", c.pods, c.containers)
	}
	if c.rounds < 1 {
		return fmt.Errorf("-critest-rounds: want at least 1, got %d", c.rounds)
	}
	if c.exits < 0 || (c.exits > 0 && (c.exitPods < 1 || c.exitPods > c.exits)) {
		return fmt.Errorf("-exits %d, -exit-pods %d: want exits ≥ 0 and 1 ≤ exit-pods ≤ exits", c.exits, c.exitPods)
	}
	for _, m := range strings.Split(c.methods, ",") {
		switch m = strings.TrimSpace(m); m {
		case "events", "status":
			c.exitMethods = append(c.exitMethods, m)
		case "":
		default:
			return fmt.Errorf("-exit-methods: unknown %q (want events, status)", m)
		}
	}
	if c.critestBin == "" {
		c.critestBin = filepath.Join(bin, "critest")
	}
	var err error
	for _, p := range []*string{&c.critestBin, &c.out, &c.runner} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	return nil
}

// lifecycleSet is one critest lifecycle benchmark's output file
// (pod_benchmark_data.json, container_benchmark_data.json): the operations of one
// cycle and, per cycle, each operation's duration.
type lifecycleSet struct {
	OperationsNames []string `json:"operationsNames"`
	NumParallel     int      `json:"numParallel"`
	Datapoints      []struct {
		SampleIndex           int               `json:"sampleIndex"`
		OperationsDurationsNs []int64           `json:"operationsDurationsNs"`
		MetaInfo              map[string]string `json:"metaInfo"`
	} `json:"datapoints"`
}

func readLifecycleSet(path string) (*lifecycleSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s lifecycleSet
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, d := range s.Datapoints {
		if len(d.OperationsDurationsNs) != len(s.OperationsNames) {
			return nil, fmt.Errorf("%s: datapoint %d has %d durations for %d operations", path, i, len(d.OperationsDurationsNs), len(s.OperationsNames))
		}
	}
	return &s, nil
}

// ids returns the pod and container ids the datapoints name.
func (s *lifecycleSet) ids() []string {
	var out []string
	for _, d := range s.Datapoints {
		for _, k := range []string{"podId", "containerId"} {
			if v := d.MetaInfo[k]; v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// measurementDurations finds the durations of the gmeasure measurement named name
// in a ginkgo JSON report (critest's "start a container from scratch" benchmark
// reports only there).
func measurementDurations(r io.Reader, name string) ([]time.Duration, error) {
	var reports []struct {
		SpecReports []struct {
			ReportEntries []struct {
				Name  string
				Value struct{ AsJSON string }
			}
		}
	}
	if err := json.NewDecoder(r).Decode(&reports); err != nil {
		return nil, fmt.Errorf("ginkgo report: %w", err)
	}
	var out []time.Duration
	for _, rep := range reports {
		for _, spec := range rep.SpecReports {
			for _, e := range spec.ReportEntries {
				var exp struct {
					Measurements []struct {
						Name      string
						Durations []time.Duration
					}
				}
				if e.Value.AsJSON == "" || json.Unmarshal([]byte(e.Value.AsJSON), &exp) != nil {
					continue
				}
				for _, m := range exp.Measurements {
					if m.Name == name {
						out = append(out, m.Durations...)
					}
				}
			}
		}
	}
	return out, nil
}

// critestBenchmarks are critest's lifecycle benchmarks: output file, operations,
// and the CRI calls each operation times (critest v1.36.0, pkg/benchmark).
var critestBenchmarks = []struct {
	key, file string
	ops       []critestOp
}{
	{"pod", "pod_benchmark_data.json", []critestOp{
		{"CreatePod", "RunPodSandbox"},
		{"StatusPod", "PodSandboxStatus (verbose)"},
		{"StopPod", "StopPodSandbox"},
		{"RemovePod", "RemovePodSandbox"},
	}},
	{"container", "container_benchmark_data.json", []critestOp{
		{"CreateContainer", "ImageStatus + CreateContainer"},
		{"StartContainer", "StartContainer"},
		{"StatusContainer", "ContainerStatus (verbose)"},
		{"StopContainer", "StopContainer (timeout 60 s, `top` ends on SIGTERM)"},
		{"RemoveContainer", "RemoveContainer"},
	}},
}

type critestOp struct{ name, calls string }

// fromScratch is the measurement of critest's third benchmark (one sample per run).
const fromScratch = "create PodSandbox and container"

// critestRun is one critest run against one runtime.
type critestRun struct {
	Runtime  string                 `json:"runtime"`
	Round    int                    `json:"round"`
	Duration string                 `json:"duration"`
	Ops      map[string][][]float64 `json:"operations_ms"` // benchmark → cycle → each operation's duration
	Scratch  []float64              `json:"from_scratch_ms,omitempty"`
	Error    string                 `json:"error,omitempty"`

	sets    map[string]*lifecycleSet // benchmark key → critest's output
	scratch []time.Duration          // the from-scratch measurement(s)
}

// opResult is one operation's figures for every runtime.
type opResult struct {
	Benchmark string             `json:"benchmark"`
	Operation string             `json:"operation"`
	Calls     string             `json:"cri_calls"`
	Runtimes  map[string]summary `json:"runtimes"`
}

type critestResults struct {
	Started    string             `json:"started"`
	Finished   string             `json:"finished"`
	Env        map[string]string  `json:"environment"`
	LoadBefore string             `json:"loadavg_before"`
	LoadAfter  string             `json:"loadavg_after"`
	Params     map[string]int     `json:"critest_params"`
	Rounds     int                `json:"rounds"`
	Runtimes   []string           `json:"runtimes"`
	Runs       []*critestRun      `json:"critest_runs"`
	Ops        []opResult         `json:"operations"`
	Scratch    map[string]summary `json:"from_scratch"`
	Pulls      map[string]string  `json:"pre_pull"`
	Exits      []*exitResult      `json:"exits"`
	Targets    []target           `json:"targets"`
	Notes      []string           `json:"notes,omitempty"`
	Failures   []string           `json:"failures,omitempty"`
}

// critestMain is -mode critest, inside run's workspace and signal handling.
func critestMain(ctx context.Context, o options, w *workspace) int {
	res, err := measureCritest(ctx, o, w)
	if res != nil {
		res.Finished = time.Now().UTC().Format(time.RFC3339)
		res.LoadAfter = loadavg()
		res.summarize()
		reportCritest(os.Stdout, res)
		saveResults(o.jsonOut, res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crishim:", err)
		return 1
	}
	if len(res.Failures) > 0 {
		fmt.Fprintf(os.Stderr, "crishim: %d failures (see above)\n", len(res.Failures))
		return 1
	}
	return 0
}

func measureCritest(ctx context.Context, o options, w *workspace) (*critestResults, error) {
	c := o.critest
	if _, err := os.Stat(c.critestBin); err != nil {
		return nil, fmt.Errorf("%w (`make bench-critest`, or `make $PWD/bin/critest`, builds it)", err)
	}
	res := &critestResults{
		Started:    time.Now().UTC().Format(time.RFC3339),
		LoadBefore: loadavg(),
		Env:        environment(o),
		Rounds:     c.rounds,
		Params: map[string]int{
			"podsNumber": c.pods, "podsNumberParallel": 1,
			"containersNumber": c.containers, "containersNumberParallel": 1,
			"imagesNumber": 0,
		},
		Pulls: map[string]string{},
	}
	res.Env["critest"] = critestVersion(c.critestBin)
	note, err := w.setUpState(o.stateTmpfs)
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, note)

	fmt.Println("starting the test image server (examples/critest -serve; the first run downloads two Debian packages)")
	if err := startImageServer(ctx, o, w); err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, fmt.Sprintf("test images from examples/critest's registry on %s; both runtimes mirror %s to it; image %s", w.registry, strings.Join(critestRegistries, ", "), critestImage))

	w.noteHostDirs()
	net, err := setupCNI(w)
	if err != nil {
		return nil, err
	}
	var rts []*criRuntime
	if o.runtimes["nodekit"] {
		fmt.Println("starting nodekit-cri")
		nk, withCNI, err := startNodekit(ctx, w, o.bin, o.images, net)
		if err != nil {
			return res, err
		}
		if !withCNI {
			return res, errors.New("this nodekit-cri has no --cni-conf-dir: the runtimes would not get the same network")
		}
		if _, err := nk.waitReady(ctx, true, 10*time.Second); err != nil {
			return res, err
		}
		res.Env["nodekit"] = nk.version
		rts = append(rts, nk)
	}
	if o.runtimes["containerd"] {
		w.addForeignCgroups("containerd", critestCgroupParent)
		fmt.Println("starting containerd")
		ctd, err := startContainerd(ctx, w, o.images, net)
		if err != nil {
			return res, err
		}
		res.Env["containerd CRI"] = ctd.version
		rts = append(rts, ctd)
	}
	if len(rts) == 0 {
		return res, errors.New("-runtimes: name nodekit and/or containerd")
	}
	res.Notes = append(res.Notes, "both runtimes run the same CNI network: loopback + nkbench-noop (a private netns with lo up, nothing else)")
	for _, r := range rts {
		res.Runtimes = append(res.Runtimes, r.name)
		res.Notes = append(res.Notes, fmt.Sprintf("%s: critest's pods get cgroup parent %s", r.name, r.critestCgroupParent(ctx, w)))
		// Pull the image once, outside the measurements: critest's CreateContainer
		// pulls it when ImageStatus does not find it, which would time a pull.
		t := time.Now()
		if _, err := r.img.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: critestImage}}); err != nil {
			return res, fmt.Errorf("%s: pull %s through the mirror: %w", r.name, critestImage, err)
		}
		res.Pulls[r.name] = time.Since(t).Round(100 * time.Microsecond).String()
	}

	params := w.path("critest-params.yaml")
	if err := os.WriteFile(params, []byte(critestParams(c.pods, c.containers)), 0o644); err != nil {
		return res, err
	}
	fmt.Printf("critest -benchmark: %d pods, %d containers, sequential; %d round(s) per runtime\n", c.pods, c.containers, c.rounds)
	for round := 0; round < c.rounds; round++ {
		for j := range rts {
			r := rts[(round+j)%len(rts)]
			run := &critestRun{Runtime: r.name, Round: round + 1}
			res.Runs = append(res.Runs, run)
			fmt.Printf("round %d: critest against %s\n", round+1, r.name)
			if err := runCritest(ctx, c, r, params, w.path("critest", fmt.Sprintf("%s-%d", r.name, round+1)), run); err != nil {
				run.Error = err.Error()
				res.Failures = append(res.Failures, fmt.Sprintf("critest round %d against %s: %v", round+1, r.name, err))
				if ctx.Err() != nil {
					return res, err
				}
			}
			for _, s := range run.sets {
				w.noteIDs(r.name, s.ids()...)
			}
			if left := r.objectIDs(ctx); len(left) > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("critest left %d pods/containers in %s after round %d (removed at the end)", len(left), r.name, round+1))
			}
		}
	}

	if c.exits > 0 {
		for _, r := range rts {
			for _, m := range c.exitMethods {
				fmt.Printf("exit latency: %s, %s, %d containers in %d pods\n", r.name, m, c.exits, c.exitPods)
				er, err := measureExits(ctx, r, exitOptions{method: m, n: c.exits, pods: c.exitPods, gap: c.exitGap, poll: c.exitPoll})
				if er != nil {
					res.Exits = append(res.Exits, er)
				}
				if err != nil {
					res.Failures = append(res.Failures, fmt.Sprintf("exit latency %s %s: %v", r.name, m, err))
					if ctx.Err() != nil {
						return res, err
					}
				}
			}
		}
	}
	return res, nil
}

// critestParams is critest's -benchmarking-params-file: sequential lifecycles, no
// image benchmarks (they pull from Docker Hub).
func critestParams(pods, containers int) string {
	return fmt.Sprintf(`# Written by bench/crishim -mode critest.
containersNumber: %d
containersNumberParallel: 1
podsNumber: %d
podsNumberParallel: 1
imagesNumber: 0
`, containers, pods)
}

// critestCgroupParent says which cgroup parent critest will give the runtime's
// pods: "" (the runtime's default) when RuntimeConfig says cgroupfs, else
// /test.slice.
func (r *criRuntime) critestCgroupParent(ctx context.Context, w *workspace) string {
	rc, err := r.rt.RuntimeConfig(ctx, &runtime.RuntimeConfigRequest{})
	if err == nil && rc.GetLinux().GetCgroupDriver() == runtime.CgroupDriver_CGROUPFS {
		if r.name == "nodekit" {
			return "none, so nodekit's --cgroup-parent " + w.cgroup + "/nodekit-default"
		}
		return "none (the runtime's default)"
	}
	why := "RuntimeConfig says systemd"
	if err != nil {
		why = "RuntimeConfig: " + strings.SplitN(err.Error(), "\n", 2)[0]
	}
	return critestCgroupParent + " (" + why + "); containerd 1.6 makes that the systemd-style cgroupsPath test.slice:cri-containerd:<id>, which runc's cgroupfs driver takes as a directory name below its own cgroup"
}

// runCritest runs `critest -benchmark` against r and reads its results into run.
func runCritest(ctx context.Context, c critestOptions, r *criRuntime, params, dir string, run *critestRun) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "critest.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer lf.Close()
	endpoint := "unix://" + r.socket
	cmd := exec.CommandContext(ctx, c.critestBin,
		"-runtime-endpoint", endpoint, "-image-endpoint", endpoint,
		"-benchmark",
		"-benchmarking-params-file", params,
		"-benchmarking-output-dir", dir,
		"-ginkgo.no-color",
		"-ginkgo.json-report", filepath.Join(dir, "report.json"),
		"-ginkgo.timeout", c.timeout.String(),
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	run.Duration = time.Since(start).Round(time.Millisecond).String()

	run.sets = map[string]*lifecycleSet{}
	run.Ops = map[string][][]float64{}
	var errs []error
	if runErr != nil {
		errs = append(errs, fmt.Errorf("critest: %w (log: %s)\n%s", runErr, logPath, tailFile(logPath, 15)))
	}
	for _, b := range critestBenchmarks {
		s, err := readLifecycleSet(filepath.Join(dir, b.file))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(s.OperationsNames) != len(b.ops) {
			errs = append(errs, fmt.Errorf("%s: operations %v, want %d", b.file, s.OperationsNames, len(b.ops)))
			continue
		}
		for i, op := range b.ops {
			if s.OperationsNames[i] != op.name {
				errs = append(errs, fmt.Errorf("%s: operation %d is %q, want %q", b.file, i, s.OperationsNames[i], op.name))
			}
		}
		run.sets[b.key] = s
		for _, d := range s.Datapoints {
			row := make([]float64, len(d.OperationsDurationsNs))
			for i, ns := range d.OperationsDurationsNs {
				row[i] = float64(ns) / 1e6
			}
			run.Ops[b.key] = append(run.Ops[b.key], row)
		}
	}
	if f, err := os.Open(filepath.Join(dir, "report.json")); err == nil {
		run.scratch, _ = measurementDurations(f, fromScratch)
		f.Close()
		for _, d := range run.scratch {
			run.Scratch = append(run.Scratch, float64(d)/1e6)
		}
	}
	return errors.Join(errs...)
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func critestVersion(bin string) string {
	out, _ := exec.Command(bin, "-version").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "critest version: "); ok {
			return strings.TrimSpace(v) + " (" + bin + ")"
		}
	}
	return "unknown (" + bin + ")"
}

// startImageServer runs examples/critest -serve: critest's test images, built
// reproducibly, in an in-memory registry on 127.0.0.1. It sets w.registry and
// w.registries (nodekit's mirror configuration, copied into the workspace).
func startImageServer(ctx context.Context, o options, w *workspace) error {
	c := o.critest
	runner := c.runner
	if runner == "" {
		runner = w.path("critest-runner")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		build := exec.CommandContext(ctx, goBin, "build", "-o", runner, "./examples/critest")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./examples/critest (run from the repository root, or pass -critest-runner): %w\n%s", err, out)
		}
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	imagesFile, registries := filepath.Join(c.out, "test-images.yaml"), filepath.Join(c.out, "registries.toml")
	for _, f := range []string{imagesFile, registries} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	d, err := daemon.StartHelper("image server", w.path("critest-images.log"), runner, "-serve", "-bin", o.bin, "-out", c.out, "-pause", filepath.Join(o.images, "pause.tar"))
	if err != nil {
		return err
	}
	w.addDaemon(d)
	// The runner writes registries.toml, then test-images.yaml, once every image
	// is pushed. The first run downloads and unpacks Debian packages: minutes.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if data, err := os.ReadFile(imagesFile); err == nil {
			if host, ok := registryHost(string(data)); ok {
				w.registry = host
				break
			}
		}
		if d.Exited() {
			return fmt.Errorf("image server exited: %v\n%s", d.Err(), d.LogTail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("image server: no %s after 10 minutes\n%s", imagesFile, d.LogTail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	data, err := os.ReadFile(registries)
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), "http://"+w.registry) {
		return fmt.Errorf("%s does not mirror to %s", registries, w.registry)
	}
	w.registries = w.path("registries.toml")
	return os.WriteFile(w.registries, data, 0o644)
}

// registryHost finds the registry in the runner's test-images.yaml
// ("defaultTestContainerImage: 127.0.0.1:PORT/e2e-test-images/busybox:1.29-2"),
// once the file is complete (both lines written).
func registryHost(imagesFile string) (string, bool) {
	var host string
	var web bool
	for _, l := range strings.Split(imagesFile, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "defaultTestContainerImage":
			h, _, ok := strings.Cut(strings.TrimSpace(v), "/")
			if ok && strings.HasPrefix(h, "127.0.0.1:") {
				host = h
			}
		case "webServerTestImage":
			web = true
		}
	}
	return host, host != "" && web && strings.HasSuffix(imagesFile, "\n")
}

// saveResults writes the results as JSON to path, if it is set, and says so.
func saveResults(path string, res any) {
	if path == "" {
		return
	}
	if err := writeJSONFile(path, res); err != nil {
		fmt.Fprintln(os.Stderr, "crishim:", err)
	} else {
		fmt.Printf("\nresults written to %s\n", path)
	}
}

// writeJSONFile writes v as indented JSON, creating the directory.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
