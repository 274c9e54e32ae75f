package eviction_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodekit-dev/nodekit/eviction"
)

// printKiller prints the evictions instead of stopping pods.
type printKiller struct{}

func (printKiller) EvictPod(_ context.Context, pod *v1.Pod, grace int64, status v1.PodStatus) error {
	fmt.Printf("evict %s (grace %ds): %s %s\n  %s\n", pod.Name, grace, status.Phase, status.Reason, strings.TrimSpace(status.Message))
	return nil
}

func u64(v uint64) *uint64 { return &v }

// A node with 64Mi of memory left, below the default hard threshold of 100Mi:
// one pass evicts the pod using the most memory above its request, and sets
// the MemoryPressure condition, under which a BestEffort pod is not admitted.
func Example() {
	cfg, err := eviction.ParseConfig(&kubeletconfigv1beta1.KubeletConfiguration{}) // the kubelet's defaults
	if err != nil {
		panic(err)
	}

	newPod := func(name, request string) *v1.Pod {
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
			Spec:       v1.PodSpec{Containers: []v1.Container{{Name: name}}},
		}
		if request != "" {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse(request)}
		}
		return p
	}
	podStats := func(name string, workingSet uint64) statsapi.PodStats {
		return statsapi.PodStats{
			PodRef:     statsapi.PodReference{Name: name, Namespace: "default", UID: "uid-" + name},
			Memory:     &statsapi.MemoryStats{WorkingSetBytes: u64(workingSet)},
			Containers: []statsapi.ContainerStats{{Name: name, Memory: &statsapi.MemoryStats{WorkingSetBytes: u64(workingSet)}}},
		}
	}
	pods := []*v1.Pod{newPod("web", "512Mi"), newPod("db", "1Gi")}
	stats := &statsapi.Summary{
		Node: statsapi.NodeStats{
			Memory: &statsapi.MemoryStats{AvailableBytes: u64(64 << 20), WorkingSetBytes: u64(4<<30 - 64<<20)},
		},
		Pods: []statsapi.PodStats{podStats("web", 1536<<20), podStats("db", 768<<20)},
	}

	m, err := eviction.New(eviction.Options{
		Config:  cfg,
		Summary: eviction.SummaryProviderFunc(func(context.Context) (*statsapi.Summary, error) { return stats, nil }),
		Pods:    eviction.PodListerFunc(func() []*v1.Pod { return pods }),
		Killer:  printKiller{},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	if _, err := m.Synchronize(context.Background()); err != nil {
		panic(err)
	}

	for _, c := range m.NodeConditions(time.Now()) {
		fmt.Println(c.Type, c.Status, c.Reason)
	}
	ok, reason, message := m.Admit(newPod("batch", ""))
	fmt.Printf("admit batch: %v %s %q\n", ok, reason, message)
	// Output:
	// evict web (grace 1s): Failed Evicted
	//   The node was low on resource: memory. Threshold quantity: 100Mi, available: 64Mi. Container web was using 1536Mi, request is 512Mi, has larger consumption of memory.
	// MemoryPressure True KubeletHasInsufficientMemory
	// DiskPressure False KubeletHasNoDiskPressure
	// PIDPressure False KubeletHasSufficientPID
	// admit batch: false Evicted "The node had condition: [MemoryPressure]. "
}
