// Package stats builds the kubelet's Summary API figures
// (k8s.io/kubelet/pkg/apis/stats/v1alpha1) without cAdvisor.
//
// Node reads the node's figures from /proc (CPU time from /proc/stat, memory
// from /proc/meminfo and /proc/vmstat, interfaces from /proc/net/dev, process
// limits from /proc/sys/kernel and /proc/loadavg) and statfs of a directory;
// the proc root is configurable so tests run on fake trees.
//
// FromCRI converts what a CRI runtime reports (ListPodSandbox, ListContainers,
// ListPodSandboxStats or ListContainerStats) into pod stats the way the
// kubelet's CRI stats provider does (pkg/kubelet/stats/cri_stats_provider.go):
// one entry per pod sandbox, running containers only, pod CPU and memory from
// the sandbox or summed over its containers, ephemeral storage from writable
// layers plus container logs.
package stats
