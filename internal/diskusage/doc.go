// Package diskusage measures what lies under a directory: the space allocated
// to it (blocks, not apparent sizes) and the inodes it uses, the directory
// itself included and hard-linked files counted once, as the kubelet's and
// containerd's own walks do. It serves the agent's log directory statistics
// and the CRI shim's unpacked layers. Elsewhere than on Linux it sums the
// files' sizes instead and counts every link.
package diskusage
