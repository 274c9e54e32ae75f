package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodekit-dev/nodekit/bench/internal/leftover"
	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// TestExitsRunLeavesNothing runs part (a) with a few exits per PLEG on the real
// shim and checks the results and that the run removed everything it created:
// workspace, mounts, cgroups, bridge, monitors.
func TestExitsRunLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	runc := testenv.Binary(t, "runc")
	testenv.Binary(t, "nodekit-monitor")
	image := testenv.Image(t, "busybox")
	out := filepath.Join(t.TempDir(), "results.json")
	o, err := parseFlags([]string{"-parts", "exits", "-exits", "3", "-exit-gap", "10ms", "-exit-jitter", "300ms",
		"-bin", filepath.Dir(runc), "-images", filepath.Dir(image), "-json", out})
	if err != nil {
		t.Fatal(err)
	}
	if code := run(o); code != 0 {
		t.Fatalf("run: exit code %d", code)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Workspace string `json:"workspace"`
		Bridge    string `json:"bridge"`
		Exits     []struct {
			PLEG    string `json:"pleg"`
			Evented bool   `json:"evented_verified"`
			Latency struct {
				N     int     `json:"n"`
				P50Ms float64 `json:"p50_ms"`
			} `json:"kill_to_status_put"`
			Relists int `json:"relists"`
		} `json:"exits"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Exits) != 2 {
		t.Fatalf("results for %d PLEGs, want 2: %s", len(res.Exits), data)
	}
	for _, e := range res.Exits {
		if e.Latency.N != 3 || e.Latency.P50Ms <= 0 {
			t.Errorf("%s: %d exits, p50 %v ms; want 3 exits with a latency", e.PLEG, e.Latency.N, e.Latency.P50Ms)
		}
	}
	if ev := res.Exits[0]; ev.PLEG != "evented" || !ev.Evented {
		t.Errorf("first result %+v: want the evented PLEG, verified", ev)
	}
	// How fast each PLEG saw the exits is the benchmark's result, not a
	// condition of this test (a loaded CI box is slow).
	if g := res.Exits[1]; g.PLEG != "generic" || g.Relists < 1 {
		t.Errorf("second result %+v: want the generic PLEG, relisting", g)
	}
	if res.Workspace == "" || res.Bridge == "" {
		t.Fatalf("results name no workspace or bridge: %s", data)
	}
	if left := leftovers(t, res.Workspace, res.Bridge); left != "" {
		t.Errorf("the run left something behind: %s", left)
	}
}

// TestVolumesRunLeavesNothing runs part (e) with 3 pods of each kind and 3
// configMap updates on the real shim and checks the results (every run
// counted, content checked, plausible latencies, the targets evaluated) and
// that the run removed everything it created.
func TestVolumesRunLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	runc := testenv.Binary(t, "runc")
	testenv.Binary(t, "nodekit-monitor")
	image := testenv.Image(t, "busybox")
	out := filepath.Join(t.TempDir(), "results.json")
	o, err := parseFlags([]string{"-parts", "volumes", "-volume-runs", "3", "-volume-updates", "3",
		"-bin", filepath.Dir(runc), "-images", filepath.Dir(image), "-json", out})
	if err != nil {
		t.Fatal(err)
	}
	if code := run(o); code != 0 {
		t.Fatalf("run: exit code %d", code)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		N     int     `json:"n"`
		P50Ms float64 `json:"p50_ms"`
	}
	var res struct {
		Workspace string `json:"workspace"`
		Bridge    string `json:"bridge"`
		Volumes   *struct {
			Runs          int     `json:"runs"`
			Without       summary `json:"manifest_to_running_without_volumes"`
			With          summary `json:"manifest_to_running_with_volumes"`
			SetUp         summary `json:"volume_setup_alone"`
			ContentChecks int     `json:"content_checks"`
			Updates       int     `json:"updates"`
			ToVolumeFile  summary `json:"rename_to_volume_file"`
			ToContainer   summary `json:"rename_to_container"`
		} `json:"volumes"`
		Targets []struct {
			Name string `json:"name"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	v := res.Volumes
	if v == nil {
		t.Fatalf("no volumes result: %s", data)
	}
	if v.Runs != 3 || v.With.N != 3 || v.Without.N != 3 || v.SetUp.N != 3 || v.ContentChecks != 4 {
		t.Errorf("runs %d, with %d, without %d, SetUp alone %d, content checks %d; want 3, 3, 3, 3 and 4 (the warm-up too)",
			v.Runs, v.With.N, v.Without.N, v.SetUp.N, v.ContentChecks)
	}
	for what, s := range map[string]summary{"with": v.With, "without": v.Without} {
		if s.P50Ms <= 0 {
			t.Errorf("manifest → running %s volumes: p50 %v ms", what, s.P50Ms)
		}
	}
	// The volume's file changes before the container can read it. How fast is
	// the benchmark's result, not a condition of this test.
	if v.Updates != 3 || v.ToVolumeFile.N != 3 || v.ToContainer.N != 3 || v.ToVolumeFile.P50Ms <= 0 ||
		v.ToContainer.P50Ms < v.ToVolumeFile.P50Ms {
		t.Errorf("updates %d: to the volume file %+v, to the container %+v", v.Updates, v.ToVolumeFile, v.ToContainer)
	}
	if len(res.Targets) != 2 || !strings.Contains(res.Targets[0].Name, "six volumes") {
		t.Errorf("targets %+v: want the two overhead targets", res.Targets)
	}
	if res.Workspace == "" || res.Bridge == "" {
		t.Fatalf("results name no workspace or bridge: %s", data)
	}
	if left := leftovers(t, res.Workspace, res.Bridge); left != "" {
		t.Errorf("the run left something behind: %s", left)
	}
}

// leftovers describes what the run of workspace dir left on the node: the
// directory, mounts and monitors under it, its cgroups, its bridge.
func leftovers(t *testing.T, dir, bridge string) string {
	t.Helper()
	var found []string
	if _, err := os.Stat(dir); err == nil {
		found = append(found, dir)
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/" + filepath.Base(dir))
	found = append(found, cg...)
	if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
		found = append(found, "bridge "+bridge)
	}
	mounts, err := leftover.MountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	found = append(found, mounts...)
	procs, err := procfs.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if leftover.IsMonitorUnder(p.Args, dir) {
			found = append(found, "monitor "+strings.Join(p.Args, " "))
		}
	}
	return strings.Join(found, ", ")
}
