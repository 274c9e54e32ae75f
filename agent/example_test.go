package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/nodekit-dev/nodekit/agent"
	"github.com/nodekit-dev/nodekit/agent/podsource"
)

// Embedding the agent with pods given in code: a podsource.Pods is one more pod
// source. Its pods keep their names and UIDs and are not static pods (the
// eviction manager may evict them). The CRI runtime here is cri-api's fake; a
// real one is reached with k8s.io/cri-client, as nodekit-kubelet does.
func Example_podsFromCode() {
	dir, _ := os.MkdirTemp("", "nodekit-example-")
	defer os.RemoveAll(dir)
	cfg, _ := agent.LoadConfig("")
	cfg.NodeName, cfg.RootDir = "node1", filepath.Join(dir, "root")
	cfg.Kubelet.PodLogsDir = filepath.Join(dir, "logs")
	noCgroups := false
	cfg.Kubelet.CgroupsPerQOS = &noCgroups // the fake runtime runs nothing to put in them
	// Pods from code are evictable and, under node pressure, refused: keep this
	// machine's free memory and disk out of the example.
	cfg.Kubelet.EvictionHard = map[string]string{"memory.available": "1Mi"}

	pods, _ := podsource.NewPods(podsource.PodsOptions{NodeName: cfg.NodeName})
	a, err := agent.New(agent.Options{
		Config:             cfg,
		Runtime:            critest.NewFakeRuntimeService(),
		Images:             critest.NewFakeImageService(),
		Sources:            []podsource.Source{pods},
		DisableServer:      true,
		DisableEventedPLEG: true, // the fake runtime has no event stream
		StopPodsOnExit:     true,
		Logger:             slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Println(err)
		}
	}()

	web, err := pods.Add(&v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo"},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "httpd", Image: "nodekit.local/web"}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("added", web.Namespace+"/"+web.Name, "from source", web.Annotations[podsource.AnnotationSource])

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p := find(a.Pods(), web.Name); p != nil && p.Status.Phase == v1.PodRunning {
			fmt.Println(p.Namespace+"/"+p.Name, p.Status.Phase, p.Status.QOSClass)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Output:
	// added demo/web from source api
	// demo/web Running BestEffort
}

func find(pods []*v1.Pod, name string) *v1.Pod {
	for _, p := range pods {
		if p.Name == name {
			return p
		}
	}
	return nil
}
