package main

import (
	"testing"

	"github.com/nodekit-dev/nodekit/bench/internal/procfs"
)

func TestIsDaemonOf(t *testing.T) {
	const dir = "/tmp/nkbench-1"
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"nodekit-cri", []string{"/work/main/bin/nodekit-cri", "--listen", dir + "/nodekit/cri.sock", "--root", dir + "/nodekit/root"}, true},
		{"containerd", []string{"/usr/bin/containerd", "--config", dir + "/containerd/config.toml"}, true},
		{"with =", []string{"containerd", "--config=" + dir + "/containerd/config.toml"}, true},
		{"another workspace", []string{"/usr/bin/containerd", "--config", dir + "2/containerd/config.toml"}, false},
		{"another program", []string{"/bin/sleep", dir + "/x"}, false},
		{"no arguments", []string{"/usr/bin/containerd"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isDaemonOf(tt.args, dir); got != tt.want {
				t.Errorf("isDaemonOf(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

func TestProcsWhere(t *testing.T) {
	all := []procfs.Proc{{PID: 1, Args: []string{"/sbin/init"}}, {PID: 7, PPID: 1, Args: []string{"/pause"}}, {PID: 9, PPID: 1, Args: []string{"/pause"}}}
	got := procsWhere(all, func(p procfs.Proc) bool { return p.PPID == 1 })
	if len(got) != 2 || got[0].PID != 7 || got[1].PID != 9 {
		t.Errorf("procsWhere = %+v, want 7 and 9 in order", got)
	}
	if all[1].PID != 7 || all[2].PID != 9 || len(all) != 3 {
		t.Errorf("procsWhere changed its input: %+v", all)
	}
}
