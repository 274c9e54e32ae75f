package cgstats_test

import (
	"fmt"
	"time"

	"github.com/nodekit-dev/nodekit/cri/cgstats"
)

// A container's linux.cgroupsPath in either driver's notation maps to a path
// below the root of each cgroup hierarchy.
func ExamplePath() {
	for _, p := range []string{
		"/kubepods/besteffort/pod1/c1",
		"kubepods-besteffort-pod1.slice:cri-containerd:c1",
	} {
		dir, err := cgstats.Path(p)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(dir)
	}
	// Output:
	// /kubepods/besteffort/pod1/c1
	// /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-c1.scope
}

// Two samples of a cgroup give its CPU rate.
func ExampleNanoCores() {
	t0 := time.Now()
	prev := &cgstats.Stats{Timestamp: t0, CPU: cgstats.CPU{UsageNanos: 1e9}}
	cur := &cgstats.Stats{Timestamp: t0.Add(10 * time.Second), CPU: cgstats.CPU{UsageNanos: 6e9}}
	rate, _ := cgstats.NanoCores(prev, cur)
	fmt.Printf("%.2f cores\n", float64(rate)/1e9)
	// Output: 0.50 cores
}
