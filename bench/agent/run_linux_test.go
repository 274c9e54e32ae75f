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
	// The generic PLEG relists every second; the measurement takes > 1 s.
	if g := res.Exits[1]; g.PLEG != "generic" || g.Relists < 1 || g.Latency.P50Ms > 1500 {
		t.Errorf("second result %+v: want the generic PLEG, relisting, exits seen within 1.5 s", g)
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
