package cgstats

import (
	"testing"
	"time"
)

func TestPath(t *testing.T) {
	for _, c := range []struct {
		in, want string
		bad      bool
	}{
		{in: "/kubepods/pod1/abc", want: "/kubepods/pod1/abc"},
		{in: "/nodekit//pod1/../pod2/c", want: "/nodekit/pod2/c"},
		{in: "/", want: "/"},
		// systemd: slice:prefix:name is the scope prefix-name.scope in the slice.
		{in: "nodekit-pod0123.slice:nodekit:abc", want: "/nodekit.slice/nodekit-pod0123.slice/nodekit-abc.scope"},
		{in: "kubepods-besteffort-pod1.slice:cri-containerd:c1", want: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-c1.scope"},
		{in: "system.slice::c1", want: "/system.slice/c1.scope"},
		{in: ":runc:c1", want: "/system.slice/runc-c1.scope"},
		{in: "-.slice:p:c1", want: "/p-c1.scope"},
		// A name that is itself a slice names that slice.
		{in: "nodekit.slice:p:nodekit-sub.slice", want: "/nodekit.slice/nodekit-sub.slice"},
		// A bare slice name: a pod's systemd cgroup parent.
		{in: "nodekit-pod0123.slice", want: "/nodekit.slice/nodekit-pod0123.slice"},
		{in: "-.slice", want: "/"},
		{in: "", bad: true},
		{in: "relative/path", bad: true},
		{in: "a.slice:b", bad: true},
		{in: "a.slice:p:", bad: true},
		{in: "a--b.slice:p:c", bad: true},
		{in: "-a.slice", bad: true},
		{in: "notaslice:p:c", bad: true},
		{in: "/a:b", bad: true},
	} {
		got, err := Path(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("Path(%q) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Path(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestNanoCores(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sample := func(at time.Time, usage uint64) *Stats {
		return &Stats{Timestamp: at, CPU: CPU{UsageNanos: usage}}
	}
	for _, c := range []struct {
		name      string
		prev, cur *Stats
		want      uint64
		ok        bool
	}{
		{"one core busy", sample(t0, 0), sample(t0.Add(2*time.Second), 2e9), 1e9, true},
		{"quarter core", sample(t0, 5e9), sample(t0.Add(4*time.Second), 6e9), 250e6, true},
		{"two cores", sample(t0, 0), sample(t0.Add(500*time.Millisecond), 1e9), 2e9, true},
		{"idle", sample(t0, 7), sample(t0.Add(time.Second), 7), 0, true},
		{"no previous sample", nil, sample(t0, 1), 0, false},
		{"same instant", sample(t0, 1), sample(t0, 5), 0, false},
		{"time went back", sample(t0, 1), sample(t0.Add(-time.Second), 5), 0, false},
		{"counter reset", sample(t0, 10e9), sample(t0.Add(time.Second), 1e9), 0, false},
	} {
		got, ok := NanoCores(c.prev, c.cur)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: NanoCores = %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestAvailable(t *testing.T) {
	for _, c := range []struct {
		m    Memory
		want uint64
		ok   bool
	}{
		{Memory{Limit: 100, WorkingSet: 30}, 70, true},
		{Memory{Limit: 100, WorkingSet: 130}, 0, true},
		{Memory{WorkingSet: 30}, 0, false},
	} {
		got, ok := c.m.Available()
		if got != c.want || ok != c.ok {
			t.Errorf("%+v.Available() = %d, %v; want %d, %v", c.m, got, ok, c.want, c.ok)
		}
	}
}

func TestNewRejectsUnknownVersion(t *testing.T) {
	if _, err := New(Options{Root: t.TempDir(), Version: 3}); err == nil {
		t.Fatal("New with version 3 succeeded")
	}
}
