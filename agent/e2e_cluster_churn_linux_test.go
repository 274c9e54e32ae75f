package agent_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/nodekit-dev/nodekit/internal/controlplane"
)

// TestE2EClusterChurn: 100 pods bound to the node are created (ten at a
// time), run, and are deleted (ten at a time). A watch on the API sees, for every pod, its
// phases in order (Pending, Running, then at most a terminal phase; never
// back), Ready before the deletion, and the object's removal; afterwards no
// pod object, container, sandbox, pod directory, mount or cgroup is left
// (the harness checks the node at cleanup).
func TestE2EClusterChurn(t *testing.T) {
	const pods = 100
	t.Parallel()
	cp := controlplane.Start(t, controlplane.Options{})
	h := newHarness(t, harnessOptions{kubeconfig: cp.NodeKubeconfig(t, nodeName)})
	rc, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 200, 400
	admin, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitFor(t, "the node Ready", 2*time.Minute, func() bool {
		n, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range n.Status.Conditions {
			if c.Type == v1.NodeReady {
				return c.Status == v1.ConditionTrue
			}
		}
		return false
	})

	// Every change the API shows, per pod, from before the first create: a
	// watch that resumes where it was should its connection end (a plain
	// one just closes, and the history would miss changes).
	selector := metav1.ListOptions{LabelSelector: "churn=yes"}
	list, err := admin.CoreV1().Pods("default").List(ctx, selector)
	if err != nil {
		t.Fatal(err)
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector.LabelSelector
			return admin.CoreV1().Pods("default").Watch(ctx, o)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	hist := &podHistory{seen: map[string][]string{}}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ev := range w.ResultChan() {
			switch p := ev.Object.(type) {
			case *v1.Pod:
				hist.add(ev.Type, p)
			case *metav1.Status:
				hist.fail(fmt.Errorf("the watch ended: %s", p.Message))
			}
		}
	}()

	grace := int64(2)
	create := func(i int) error {
		c := shell("main", `trap 'exit 0' TERM; `+idle)
		c.VolumeMounts = nil // no /host here
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%03d", i), Namespace: "default", Labels: map[string]string{"churn": "yes"}},
			Spec: v1.PodSpec{NodeName: nodeName, Containers: []v1.Container{c}, TerminationGracePeriodSeconds: &grace,
				AutomountServiceAccountToken: new(bool)},
		}
		_, err := admin.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		return err
	}
	// In batches of 10 (created together, all Running and Ready in the API
	// before the next), so that the node is not the only one under load:
	// other packages' tests run beside this one.
	const batch = 10
	apiReady := func(n int) func() bool {
		return func() bool {
			l, err := admin.CoreV1().Pods("default").List(ctx, selector)
			if err != nil {
				return false
			}
			ready := 0
			for i := range l.Items {
				if l.Items[i].Status.Phase == v1.PodRunning && podReady(&l.Items[i]) {
					ready++
				}
			}
			return ready == n
		}
	}
	for b := 0; b < pods; b += batch {
		if err := parallel(batch, batch, func(i int) error { return create(b + i) }); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("%d pods Running and Ready in the API", b+batch), 3*time.Minute, apiReady(b+batch))
	}
	del := func(i int) error {
		return admin.CoreV1().Pods("default").Delete(ctx, fmt.Sprintf("churn-%03d", i), metav1.DeleteOptions{})
	}
	for b := 0; b < pods; b += batch {
		if err := parallel(batch, batch, func(i int) error { return del(b + i) }); err != nil {
			t.Fatal(err)
		}
		left := pods - b - batch
		waitFor(t, fmt.Sprintf("%d pod objects left", left), 3*time.Minute, func() bool {
			l, err := admin.CoreV1().Pods("default").List(ctx, selector)
			return err == nil && len(l.Items) == left
		})
	}
	waitFor(t, "the watch to show every removal", time.Minute, func() bool {
		return hist.count(func(h []string) bool { return last(h) == "DELETED" }) == pods
	})
	w.Stop()
	<-watchDone
	if err := hist.error(); err != nil {
		t.Fatal(err)
	}

	transitions := 0
	for name, seq := range hist.snapshot() {
		transitions += len(seq)
		if err := checkOrder(seq); err != nil {
			t.Errorf("%s: %v; as the API showed it: %s", name, err, strings.Join(seq, " → "))
		}
	}
	if l, err := admin.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "churn=yes"}); err != nil || len(l.Items) > 0 {
		t.Errorf("pod objects left: %d (%v)", len(l.Items), err)
	}
	sbs, err := h.rt.ListPodSandbox(ctx, nil)
	if err != nil || len(sbs) > 0 {
		t.Errorf("sandboxes left in the runtime: %d (%v)", len(sbs), err)
	}
	t.Logf("%d pods: %d distinct states seen in the API, all in order", pods, transitions)
}

// podHistory is what a watch showed of each pod: its distinct states as
// "Phase" or "Phase/Ready", then "DELETED".
type podHistory struct {
	mu   sync.Mutex
	seen map[string][]string
	err  error
}

func (h *podHistory) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
	}
}

func (h *podHistory) error() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *podHistory) add(t watch.EventType, p *v1.Pod) {
	state := string(p.Status.Phase)
	if podReady(p) {
		state += "/Ready"
	}
	if t == watch.Deleted {
		state = "DELETED"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	seq := h.seen[p.Name]
	if last(seq) != state {
		h.seen[p.Name] = append(seq, state)
	}
}

func (h *podHistory) count(f func([]string) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, seq := range h.seen {
		if f(seq) {
			n++
		}
	}
	return n
}

func (h *podHistory) snapshot() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for k, v := range h.seen {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func last(seq []string) string {
	if len(seq) == 0 {
		return ""
	}
	return seq[len(seq)-1]
}

// checkOrder wants Pending, then Running (Ready at some point), then
// optionally a terminal phase, then DELETED; a phase never goes back.
func checkOrder(seq []string) error {
	rank := map[v1.PodPhase]int{v1.PodPending: 0, v1.PodRunning: 1, v1.PodSucceeded: 2, v1.PodFailed: 2}
	prev, ready := -1, false
	for i, s := range seq {
		if s == "DELETED" {
			if i != len(seq)-1 {
				return fmt.Errorf("changed after it was deleted")
			}
			continue
		}
		phase, r, _ := strings.Cut(s, "/")
		ready = ready || r == "Ready"
		k, ok := rank[v1.PodPhase(phase)]
		if !ok {
			return fmt.Errorf("phase %q", phase)
		}
		if k < prev || (k == 2 && prev == 2 && s != seq[i-1]) {
			return fmt.Errorf("phase %s after a later one", phase)
		}
		prev = k
	}
	switch {
	case len(seq) == 0 || seq[0] != string(v1.PodPending):
		return fmt.Errorf("did not start Pending")
	case !ready:
		return fmt.Errorf("never Ready")
	case last(seq) != "DELETED":
		return fmt.Errorf("not deleted")
	}
	return nil
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(n, workers int, f func(int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
