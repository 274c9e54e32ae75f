package monitor

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nodekit-dev/nodekit/cri/atomicfile"
)

func validConfig() Config {
	return Config{
		ID: "c1", Bundle: "/b", Runtime: "/usr/bin/runc", RuntimeRoot: "/run/r",
		RuntimeArgs: []string{"--systemd-cgroup"}, LogPath: "/var/log/pods/x/0.log", LogMaxLine: 100,
		ExitFile: "/s/exit.json", PidFile: "/s/pid", Terminal: true, DeleteOnExit: true, CgroupRoot: "/cg",
		Stdin: true, StdinOnce: true, AttachSocket: "/s/attach.sock",
	}
}

func TestConfigJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), ConfigFile)
	want := validConfig()
	if err := atomicfile.WriteJSON(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip = %+v, want %+v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name, wantErr string
		edit          func(*Config)
	}{
		{"valid", "", func(*Config) {}},
		{"optional fields empty", "", func(c *Config) { c.LogPath, c.RuntimeRoot, c.CgroupRoot = "", "", "" }},
		{"no id", "ID is empty", func(c *Config) { c.ID = "" }},
		{"no exit file", "ExitFile is empty", func(c *Config) { c.ExitFile = "" }},
		{"relative bundle", `Bundle "b" is not an absolute path`, func(c *Config) { c.Bundle = "b" }},
		{"relative runtime", `Runtime "runc" is not an absolute path`, func(c *Config) { c.Runtime = "runc" }},
		{"relative log", "LogPath", func(c *Config) { c.LogPath = "x.log" }},
		{"no attach socket", "", func(c *Config) { c.AttachSocket = "" }},
		{"relative attach socket", `AttachSocket "a.sock" is not an absolute path`, func(c *Config) { c.AttachSocket = "a.sock" }},
	} {
		c := validConfig()
		tc.edit(&c)
		err := c.Validate()
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: Validate() = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.LogMaxLine != 16*1024 || c.CgroupRoot != DefaultCgroupRoot {
		t.Fatalf("defaults = %d, %q", c.LogMaxLine, c.CgroupRoot)
	}
}

func TestExitRoundTripAndReadExit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "exit.json")
	if _, err := ReadExit(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadExit of a missing file = %v, want os.ErrNotExist", err)
	}
	want := Exit{Pid: 42, ExitCode: 137, Signal: 9, FinishedAt: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), OOMKilled: true, Error: "log write failed: x"}
	if err := atomicfile.WriteJSON(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExit(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadExit = %+v, want %+v", got, want)
	}
	if err := os.WriteFile(path, []byte(`{"pid":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadExit(path); err == nil || !strings.Contains(err.Error(), "finishedAt") {
		t.Fatalf("ReadExit of a record without finishedAt = %v", err)
	}
}

func TestSyncMessages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		msg     *syncMessage // written with writeSync; nil: raw is used
		raw     string
		wantPid int
		wantErr string
	}{
		{name: "pid", msg: &syncMessage{Pid: 1234}, wantPid: 1234},
		{name: "error", msg: &syncMessage{Error: `exec: "nope": executable file not found in $PATH`}, wantErr: `exec: "nope": executable file not found in $PATH`},
		{name: "nothing", raw: "", wantErr: errNoReport.Error()},
		{name: "blank line", raw: "\n", wantErr: errNoReport.Error()},
		{name: "garbage", raw: "hello\n", wantErr: "decode monitor sync message"},
		{name: "no pid", raw: "{}\n", wantErr: "no pid"},
		{name: "first line counts", raw: "{\"pid\":7}\n{\"error\":\"x\"}\n", wantPid: 7},
	} {
		raw := []byte(tc.raw)
		if tc.msg != nil {
			var b strings.Builder
			if err := writeSync(&b, *tc.msg); err != nil {
				t.Fatal(err)
			}
			raw = []byte(b.String())
			if !strings.HasSuffix(b.String(), "}\n") {
				t.Errorf("%s: message %q is not one JSON line", tc.name, raw)
			}
		}
		pid, err := readSync(raw)
		if pid != tc.wantPid || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: readSync(%q) = %d, %v; want %d, error containing %q", tc.name, raw, pid, err, tc.wantPid, tc.wantErr)
		}
	}
}

func TestRuntimeMessage(t *testing.T) {
	for _, tc := range []struct{ stderr, want string }{
		{`time="2026-11-21T22:15:44Z" level=error msg="runc run failed: exec: \"nope\": executable file not found in $PATH"` + "\n",
			`runc run failed: exec: "nope": executable file not found in $PATH`},
		{"time=\"x\" level=warning msg=\"w\"\ntime=\"x\" level=error msg=\"a\"\ntime=\"x\" level=fatal msg=b\n", "a; b"},
		{"  crun: executable file `nope` not found in $PATH: No such file or directory\n", "crun: executable file `nope` not found in $PATH: No such file or directory"},
		{"", ""},
	} {
		if got := runtimeMessage([]byte(tc.stderr)); got != tc.want {
			t.Errorf("runtimeMessage(%q) = %q, want %q", tc.stderr, got, tc.want)
		}
	}
}

func TestOOMFile(t *testing.T) {
	for _, tc := range []struct{ name, procCgroup, want string }{
		{"v1", "5:devices:/k/c1\n4:memory:/k/c1\n0::/k/c1\n", "/cg/memory/k/c1/memory.oom_control"},
		{"v1 co-mounted", "3:cpu,memory:/c1\n", "/cg/memory/c1/memory.oom_control"},
		{"v2", "0::/kubepods/c1\n", "/cg/kubepods/c1/memory.events"},
		{"none", "1:name=systemd:/\n", ""},
	} {
		got, err := oomFile("/cg", []byte(tc.procCgroup))
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%s: oomFile = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestOOMCounterOnFakeTrees(t *testing.T) {
	for _, tc := range []struct {
		name, file, before, after string
		wantErr, wantKilled       bool
	}{
		{name: "v1 kill", file: "memory.oom_control",
			before: "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", after: "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", wantKilled: true},
		{name: "v1 none", file: "memory.oom_control",
			before: "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", after: "oom_kill_disable 0\nunder_oom 1\noom_kill 2\n"},
		{name: "v2 kill", file: "memory.events",
			before: "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n", after: "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n", wantKilled: true},
		{name: "v2 none", file: "memory.events",
			before: "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", after: "low 0\nhigh 0\nmax 9\noom 0\noom_kill 0\n"},
		{name: "old kernel without counter", file: "memory.oom_control",
			before: "oom_kill_disable 0\nunder_oom 0\n", after: "oom_kill_disable 0\nunder_oom 1\n", wantErr: true},
		{name: "bad counter", file: "memory.events", before: "oom_kill x\n", after: "oom_kill 1\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(tc.before), 0o644); err != nil {
				t.Fatal(err)
			}
			c := &oomCounter{path: path}
			c.start, c.err = readOOMKills(path)
			if (c.err != nil) != tc.wantErr {
				t.Fatalf("readOOMKills = %v, want error %v", c.err, tc.wantErr)
			}
			if err := os.WriteFile(path, []byte(tc.after), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := c.killed(); got != tc.wantKilled {
				t.Fatalf("killed() = %v, want %v", got, tc.wantKilled)
			}
		})
	}
}

func TestExitJSONFieldNames(t *testing.T) {
	data, err := json.Marshal(Exit{Pid: 1, ExitCode: 3, FinishedAt: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pid":1,"exitCode":3,"finishedAt":"1970-01-01T00:00:00Z"}`; string(data) != want {
		t.Fatalf("Exit JSON = %s, want %s", data, want)
	}
}
