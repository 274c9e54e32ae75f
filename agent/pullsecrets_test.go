package agent

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/objects"
)

// authImages records the credentials each pull was given.
type authImages struct {
	*critest.FakeImageService
	mu    sync.Mutex
	auths map[string][]*runtimeapi.AuthConfig // by image
}

func (f *authImages) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, sb *runtimeapi.PodSandboxConfig) (string, error) {
	f.mu.Lock()
	f.auths[image.Image] = append(f.auths[image.Image], auth)
	f.mu.Unlock()
	return f.FakeImageService.PullImage(ctx, image, auth, sb)
}

func (f *authImages) pulls(image string) []*runtimeapi.AuthConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*runtimeapi.AuthConfig(nil), f.auths[image]...)
}

// A pod from code names its pull secrets in spec.imagePullSecrets; the agent
// reads them from its secret source (here the embedder's objects.Static) and
// the pull gets the credentials for the image's registry. A pull secret that
// does not exist is skipped, as the kubelet does.
func TestPullSecretsReachPullImage(t *testing.T) {
	cfgJSON, err := json.Marshal(map[string]any{"auths": map[string]any{
		"registry.example.com": map[string]string{"username": "robot", "password": "s3cret"},
		"other.example.com":    map[string]string{"username": "nobody", "password": "x"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	secrets := objects.NewStatic()
	secrets.SetSecret(&v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "regcred"},
		Type:       v1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{v1.DockerConfigJsonKey: cfgJSON},
	})
	pods, err := podsource.NewPods(podsource.PodsOptions{NodeName: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	img := &authImages{FakeImageService: critest.NewFakeImageService(), auths: map[string][]*runtimeapi.AuthConfig{}}
	startFakeAgent(t, func(o *Options) {
		o.Images = img
		o.Objects = secrets
		o.Sources = []podsource.Source{pods}
	})
	const image = "registry.example.com/team/app:1.0"
	if _, err := pods.Add(&v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "private", Namespace: "default", UID: "private-uid"},
		Spec: v1.PodSpec{
			ImagePullSecrets: []v1.LocalObjectReference{{Name: "missing"}, {Name: "regcred"}},
			Containers:       []v1.Container{{Name: "app", Image: image}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the pull of "+image, func() bool { return len(img.pulls(image)) > 0 })
	a := img.pulls(image)[0]
	if a == nil || a.Username != "robot" || a.Password != "s3cret" || a.ServerAddress != "registry.example.com" {
		t.Fatalf("PullImage got auth %+v, want robot/s3cret for registry.example.com", a)
	}
}
