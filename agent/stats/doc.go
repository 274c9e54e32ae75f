// Package stats builds the kubelet's Summary API figures
// (k8s.io/kubelet/pkg/apis/stats/v1alpha1).
//
// Node reads the node's figures as the kubelet does, through cAdvisor
// (github.com/google/cadvisor/lib) used as a library, without its manager: the
// root cgroup's CPU, memory (working set = usage − inactive file; available =
// the machine's memory − working set), swap and pressure, and pid 1's network
// by cAdvisor's libcontainer handler; system containers (such as "pods") the
// same way; the filesystem of a directory (nodefs) by cAdvisor's fs package;
// the machine's capacity and identity (Machine) by its machine package.
// What the kubelet itself reads without cAdvisor stays here: process limits
// (kernel.pid_max, kernel.threads-max, /proc/loadavg), the boot time, and the
// default route's interface (the kubelet names eth0).
//
// FromCRI converts what a CRI runtime reports (ListPodSandbox, ListContainers,
// ListPodSandboxStats or ListContainerStats) into pod stats the way the
// kubelet's CRI stats provider does (pkg/kubelet/stats/cri_stats_provider.go):
// one entry per pod sandbox, running containers only, pod CPU and memory from
// the sandbox or summed over its containers, ephemeral storage from writable
// layers plus container logs, on the capacity of the log filesystem as
// cAdvisor reports it.
package stats
