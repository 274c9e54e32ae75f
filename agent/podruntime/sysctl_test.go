package podruntime

import "testing"

// The kubelet's own cases (k8s.io/component-helpers/node/util/sysctl): a name
// whose first separator is a slash gets its slashes and dots swapped; a name
// whose first separator is a dot is kept, slashes and all.
func TestSysctlDots(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"kernel.shm_rmid_forced":           "kernel.shm_rmid_forced",
		"kernel/shm_rmid_forced":           "kernel.shm_rmid_forced",
		"net.ipv4.conf.eno2/100.rp_filter": "net.ipv4.conf.eno2/100.rp_filter",
		"net/ipv4/conf/eno2.100/rp_filter": "net.ipv4.conf.eno2/100.rp_filter",
		"net/ipv4/ip_local_port_range":     "net.ipv4.ip_local_port_range",
		"kernel/msgmax":                    "kernel.msgmax",
		"kernel/sem":                       "kernel.sem",
	} {
		if got := sysctlDots(in); got != want {
			t.Errorf("sysctlDots(%q) = %q, want %q", in, got, want)
		}
	}
}
