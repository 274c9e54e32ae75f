package qos

// tree writes cgroups of one cgroup version. Paths are a hierarchy's relative
// paths ("/kubepods/burstable"). The version is picked once, in New.
type tree interface {
	// ensure creates the cgroup (and its parents) if needed and applies res.
	ensure(path string, res Resources) error
	// remove removes the cgroup and every cgroup below it, in every hierarchy;
	// it fails while a process lives in one of them.
	remove(path string) error
	// children lists the names of the cgroup's child cgroups.
	children(path string) ([]string, error)
	// version is 1 or 2.
	version() int
}
