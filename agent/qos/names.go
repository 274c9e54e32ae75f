package qos

import (
	"path"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Cgroup drivers.
const (
	DriverCgroupfs = "cgroupfs"
	DriverSystemd  = "systemd"
)

// name is a cgroup's name as a list of components, independent of the driver
// (the kubelet's CgroupName): {"kubepods", "burstable", "pod1234"}.
type name []string

func (n name) child(c string) name { return append(append(name{}, n...), c) }

// path returns the cgroup's path under a hierarchy's mount point for the driver:
// /kubepods/burstable/pod1234 (cgroupfs) or
// /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice
// (systemd, where each level's slice name repeats its ancestors', and a
// component's dashes become underscores).
func (n name) path(driver string) string {
	if driver != DriverSystemd {
		return "/" + path.Join(n...)
	}
	var parts []string
	prefix := ""
	for _, c := range n {
		c = strings.ReplaceAll(c, "-", "_")
		if prefix != "" {
			c = prefix + "-" + c
		}
		prefix = c
		parts = append(parts, c+".slice")
	}
	return "/" + path.Join(parts...)
}

// rootName is the cgroupRoot setting as a name: "/" is empty.
func rootName(root string) name {
	var n name
	for _, c := range strings.Split(strings.Trim(path.Clean("/"+root), "/"), "/") {
		if c != "" {
			n = append(n, strings.TrimSuffix(c, ".slice"))
		}
	}
	return n
}

// podName is the pod cgroup's name component.
func podName(uid types.UID) string { return "pod" + string(uid) }

// tier is the QoS tier a class's pods live in: kubepods itself for Guaranteed.
func tier(class v1.PodQOSClass) string {
	switch class {
	case v1.PodQOSBurstable:
		return "burstable"
	case v1.PodQOSBestEffort:
		return "besteffort"
	}
	return ""
}

// KubepodsPath is the path of the kubepods cgroup under a hierarchy's mount point
// for a driver and cgroupRoot ("/kubepods", "/kubepods.slice"), what Manager.Path("")
// returns, known before any Manager is made.
func KubepodsPath(driver, root string) string {
	if driver == "" {
		driver = DriverCgroupfs
	}
	return rootName(root).child("kubepods").path(driver)
}
