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
// does every second). For a real runtime, use MeasureRelist (see
// TestMeasureRelistRealRuntime).
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

func TestMeasureRelist(t *testing.T) {
	f := fakeNode(10)
	o, _ := testOptions(f)
	timing, err := MeasureRelist(context.Background(), o, 3)
	if err != nil {
		t.Fatal(err)
	}
	if timing.Pods != 10 || timing.Cold <= 0 || timing.Warm <= 0 {
		t.Fatalf("timing %+v, want 10 pods and durations", timing)
	}
	// The warm relists made no status calls: nothing changed.
	f.statusN.Store(0)
	if _, err := MeasureRelist(context.Background(), o, 3); err != nil || f.statusN.Load() != 20 {
		t.Fatalf("a measurement made %d status calls (%v), want 20 (the cold relist only)", f.statusN.Load(), err)
	}
	f.InjectError("ListPodSandbox", fmt.Errorf("down"))
	if _, err := MeasureRelist(context.Background(), o, 1); err == nil {
		t.Fatal("no error from a failing runtime")
	}
}
