package pleg

import (
	"context"
	"fmt"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeNode is a fake runtime holding n pods, each a ready sandbox and a running
// container.
func fakeNode(n int) *fakeRuntime {
	f := newFakeRuntime()
	pods := make([]*testPod, n)
	for i := range pods {
		pods[i] = simplePod(fmt.Sprintf("pod-%03d", i), runtimeapi.ContainerState_CONTAINER_RUNNING)
	}
	f.set(pods...)
	return f
}

// BenchmarkRelist times one relist over the CRI fake runtime at 100 and 250
// pods: cold (every pod new, so inspected) and warm (nothing changed, what a node
// does every second). Against the real shim: TestRelistRealRuntime.
func BenchmarkRelist(b *testing.B) {
	for _, n := range []int{100, 250} {
		b.Run(fmt.Sprintf("pods=%d/cold", n), func(b *testing.B) {
			f := fakeNode(n)
			o, _ := testOptions(f)
			o.EventBuffer = 4 * n
			for b.Loop() {
				r := newRelister(o.withDefaults())
				if err := r.relist(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("pods=%d/warm", n), func(b *testing.B) {
			f := fakeNode(n)
			o, _ := testOptions(f)
			o.EventBuffer = 4 * n
			r := newRelister(o.withDefaults())
			if err := r.relist(context.Background()); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := r.relist(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
