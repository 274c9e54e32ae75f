package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadLifecycleSet(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string
		wantN   int
		wantIDs []string
	}{
		{"pod benchmark", `{"operationsNames":["CreatePod","StatusPod","StopPod","RemovePod"],"numParallel":1,"datapoints":[
			{"sampleIndex":0,"startTime":1,"endTime":2,"operationsDurationsNs":[92999510,2409896,52786651,10096436],"metaInfo":{"podId":"p1","podSandboxName":"x"}},
			{"sampleIndex":1,"operationsDurationsNs":[1,2,3,4],"metaInfo":{"podId":"p2"}}]}`, "", 2, []string{"p1", "p2"}},
		{"container benchmark", `{"operationsNames":["A","B"],"datapoints":[{"operationsDurationsNs":[1,2],"metaInfo":{"podId":"p","containerId":"c"}}]}`, "", 1, []string{"p", "c"}},
		{"no datapoints", `{"operationsNames":["A"],"datapoints":[]}`, "", 0, nil},
		{"short datapoint", `{"operationsNames":["A","B"],"datapoints":[{"operationsDurationsNs":[1]}]}`, "datapoint 0 has 1 durations for 2 operations", 0, nil},
		{"not JSON", `{"operationsNames":`, "unexpected end", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "data.json")
			if err := os.WriteFile(p, []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := readLifecycleSet(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Datapoints) != tt.wantN {
				t.Errorf("%d datapoints, want %d", len(s.Datapoints), tt.wantN)
			}
			if got := s.ids(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("ids = %v, want %v", got, tt.wantIDs)
			}
		})
	}
	if _, err := readLifecycleSet(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing file is not an error")
	}
}

// A ginkgo JSON report as critest v1.36.0 writes it, trimmed to what is read.
const ginkgoReport = `[{"SuiteDescription":"CRI validation","SpecReports":[
 {"LeafNodeText":"benchmark about start a container from scratch","ReportEntries":[{"Name":"start-container-benchmark","Value":{"Representation":"","AsJSON":"{\"Name\":\"start-container-benchmark\",\"Measurements\":[{\"Type\":\"Duration\",\"ExperimentName\":\"start-container-benchmark\",\"Name\":\"create PodSandbox and container\",\"Units\":\"duration\",\"Durations\":[396501554],\"Values\":null}]}"}}]},
 {"LeafNodeText":"benchmark about lifecycle of PodSandbox","ReportEntries":null},
 {"LeafNodeText":"other","ReportEntries":[{"Name":"text","Value":{"AsJSON":"\"just a string\""}},{"Name":"other-experiment","Value":{"AsJSON":"{\"Measurements\":[{\"Name\":\"something else\",\"Durations\":[5]}]}"}}]}
]}]`

func TestMeasurementDurations(t *testing.T) {
	got, err := measurementDurations(strings.NewReader(ginkgoReport), fromScratch)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{396501554}; !slices.Equal(got, want) {
		t.Errorf("durations = %v, want %v", got, want)
	}
	if got, _ := measurementDurations(strings.NewReader(ginkgoReport), "absent"); len(got) != 0 {
		t.Errorf("absent measurement gave %v", got)
	}
	if _, err := measurementDurations(strings.NewReader("{"), fromScratch); err == nil {
		t.Error("a broken report is not an error")
	}
}

func TestRegistryHost(t *testing.T) {
	tests := []struct {
		name, file, want string
		ok               bool
	}{
		{"complete", "defaultTestContainerImage: 127.0.0.1:41417/e2e-test-images/busybox:1.29-2\nwebServerTestImage: 127.0.0.1:41417/e2e-test-images/nginx:1.14-2\n", "127.0.0.1:41417", true},
		{"still being written", "defaultTestContainerImage: 127.0.0.1:41417/e2e-test-images/busybox:1.29-2\nwebServerTestImage: 127.0.0.1:41417/e2e-te", "127.0.0.1:41417", false},
		{"first line only", "defaultTestContainerImage: 127.0.0.1:41417/e2e-test-images/busybox:1.29-2\n", "127.0.0.1:41417", false},
		{"not loopback", "defaultTestContainerImage: registry.k8s.io/e2e-test-images/busybox:1.29-2\nwebServerTestImage: x/y\n", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := registryHost(tt.file)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("registryHost = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestContainerdConfigMirrors(t *testing.T) {
	net := cniNetwork{confDir: "/w/cni/net.d", binDir: "/w/cni/bin"}
	with := containerdConfig("/w/containerd", "/w/containerd/state", "/bin/runc", net, "127.0.0.1:5000")
	for _, reg := range critestRegistries {
		want := `[plugins."io.containerd.grpc.v1.cri".registry.mirrors."` + reg + `"]` + "\n    endpoint = [\"http://127.0.0.1:5000\"]"
		if !strings.Contains(with, want) {
			t.Errorf("config lacks the mirror of %s:\n%s", reg, with)
		}
	}
	without := containerdConfig("/w/containerd", "/w/containerd/state", "/bin/runc", net, "")
	if strings.Contains(without, "registry.mirrors") {
		t.Errorf("config without a mirror has mirrors:\n%s", without)
	}
	if !strings.HasPrefix(with, without) {
		t.Error("the mirrors are not simply appended to the config")
	}
}

func TestInfoPid(t *testing.T) {
	tests := []struct {
		name    string
		info    map[string]string
		want    int
		wantErr bool
	}{
		{"nodekit", map[string]string{"info": `{"sandboxID":"s","pid":4242,"monitorPid":4200,"bundle":"/b","layers":["a"]}`}, 4242, false},
		{"containerd", map[string]string{"info": `{"sandboxID":"s","pid":77,"removing":false,"snapshotKey":"k","runtimeSpec":{"ociVersion":"1.0.2"}}`}, 77, false},
		{"no pid", map[string]string{"info": `{"sandboxID":"s"}`}, 0, true},
		{"no info", map[string]string{}, 0, true},
		{"not JSON", map[string]string{"info": "pid=3"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := infoPid(tt.info)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("infoPid = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCritestSummarize(t *testing.T) {
	// Two runs per runtime; pod ops: nodekit 10/1/5/2 ms, containerd 100/1/50/2 ms.
	pod := func(a, b, c, d float64) []float64 { return []float64{a, b, c, d} }
	ctr := func(v ...float64) []float64 { return v }
	res := &critestResults{Runtimes: []string{"nodekit", "containerd"}}
	for round := 1; round <= 2; round++ {
		res.Runs = append(res.Runs,
			&critestRun{Runtime: "nodekit", Round: round, Ops: map[string][][]float64{
				"pod":       {pod(10, 1, 5, 2), pod(12, 1, 5, 2)},
				"container": {ctr(2, 30, 0.5, 3, 12)},
			}, scratch: []time.Duration{80 * time.Millisecond}},
			&critestRun{Runtime: "containerd", Round: round, Ops: map[string][][]float64{
				"pod":       {pod(100, 1, 50, 2), pod(100, 1, 50, 2)},
				"container": {ctr(10, 60, 0.5, 70, 5)},
			}, scratch: []time.Duration{300 * time.Millisecond}})
	}
	res.Exits = []*exitResult{
		{Runtime: "nodekit", Method: "events", Supported: true, lat: []time.Duration{3 * time.Millisecond, 25 * time.Millisecond}},
		{Runtime: "containerd", Method: "events", Supported: false},
	}
	res.summarize()

	find := func(b, op string) opResult {
		for _, o := range res.Ops {
			if o.Benchmark == b && o.Operation == op {
				return o
			}
		}
		t.Fatalf("no result for %s %s", b, op)
		return opResult{}
	}
	if got := find("pod", "CreatePod").Runtimes["nodekit"]; got.N != 4 || got.P50 != 10*time.Millisecond || got.Max != 12*time.Millisecond {
		t.Errorf("nodekit CreatePod = %+v, want n 4, p50 10ms, max 12ms", got)
	}
	if got := find("pod", lifecycleSum).Runtimes["containerd"]; got.P50 != 153*time.Millisecond {
		t.Errorf("containerd pod cycle p50 = %v, want 153ms", got.P50)
	}
	if got := res.Scratch["containerd"]; got.N != 2 || got.P50 != 300*time.Millisecond {
		t.Errorf("containerd from scratch = %+v", got)
	}
	met := map[string]bool{}
	for _, tg := range res.Targets {
		met[strings.SplitN(tg.Name, " ", 2)[0]] = tg.Met
	}
	want := map[string]bool{
		"CreatePod": true, "StatusPod": false, "StopPod": true, "RemovePod": false,
		"CreateContainer": true, "StartContainer": true, "StatusContainer": false, "StopContainer": true, "RemoveContainer": false,
		"nodekit": false, // exit-to-event p99 25 ms > 20 ms
	}
	for k, v := range want {
		if got, ok := met[k]; !ok || got != v {
			t.Errorf("target %s met = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(res.Targets) != len(want) {
		t.Errorf("%d targets, want %d (none for an unsupported method or a cycle total): %+v", len(res.Targets), len(want), res.Targets)
	}
	var b strings.Builder
	reportCritest(&b, res)
	for _, s := range []string{"| pod       |       CreatePod |", "GetContainerEvents", "**no**"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}

func TestForeignCgroups(t *testing.T) {
	const id, other = "c7f1c07b0103242d", "0ther1d"
	fc := newForeignCgroups("containerd", "/test.slice")
	fc.addIDs(id, "", "../x", "a/b")
	if len(fc.ids) != 1 {
		t.Errorf("ids = %v, want only %s", fc.ids, id)
	}
	root := t.TempDir()
	mp1, mp2 := filepath.Join(root, "memory"), filepath.Join(root, "cpu")
	ours := []string{
		filepath.Join(mp1, "process_api", "798e9f", "test.slice:cri-containerd:"+id), // below our own cgroup
		filepath.Join(mp2, "test.slice:cri-containerd:"+id),                          // at the root
		filepath.Join(mp2, "test.slice", id),                                         // a runtime that honours the parent
	}
	theirs := []string{
		filepath.Join(mp1, "test.slice:cri-containerd:"+other),
		filepath.Join(mp2, "test.slice", other),
		filepath.Join(mp2, "k8s.io", id), // our id, but not under the parent
		filepath.Join(mp2, "test.slice:cri-containerd:"+id+"x"),
	}
	for _, d := range append(append([]string{}, ours...), theirs...) {
		if err := os.MkdirAll(filepath.Join(d, "child"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got := fc.find([]string{mp1, mp2})
	slices.Sort(got)
	want := slices.Clone(ours)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("find = %v, want %v", got, want)
	}
}

func TestCritestOptionsCheck(t *testing.T) {
	tests := []struct {
		name    string
		o       critestOptions
		wantErr bool
	}{
		{"defaults", critestOptions{pods: 20, containers: 20, rounds: 2, exits: 100, exitPods: 10, methods: "events,status"}, false},
		{"no exits", critestOptions{pods: 20, containers: 20, rounds: 1, exits: 0, methods: "events"}, false},
		{"no pods", critestOptions{pods: 0, containers: 20, rounds: 1}, true},
		{"no rounds", critestOptions{pods: 1, containers: 1, rounds: 0}, true},
		{"more pods than exits", critestOptions{pods: 1, containers: 1, rounds: 1, exits: 5, exitPods: 6}, true},
		{"bad method", critestOptions{pods: 1, containers: 1, rounds: 1, exits: 5, exitPods: 1, methods: "events,guess"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.check("/opt/bin")
			if (err != nil) != tt.wantErr {
				t.Fatalf("check: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && tt.o.critestBin != "/opt/bin/critest" {
				t.Errorf("critest binary = %q, want /opt/bin/critest", tt.o.critestBin)
			}
		})
	}
}
