package podruntime

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/agent/timeline"
)

// pulledImage is an image ready for a container.
type pulledImage struct {
	ref  string // the runtime's image ID
	uid  *int64 // the image's user, for runAsNonRoot and RunAsUser
	user string
	size uint64 // bytes, as the runtime reports it
}

// ensureImage makes sure the container's image is present per its pull policy
// (the kubelet's EnsureImageExists): a failed pull puts the image in back-off
// (ErrImagePull, then ImagePullBackOff until the back-off ends). It returns the
// remaining back-off with ImagePullBackOff.
func (m *Manager) ensureImage(ctx context.Context, pod *v1.Pod, c *v1.Container, secrets []v1.Secret, sandbox *runtimeapi.PodSandboxConfig) (pulledImage, *failure) {
	return m.ensureImageRef(ctx, pod, c.Image, c.ImagePullPolicy, secrets, sandbox, "container "+c.Name, c.Name)
}

// ensureImageRef is ensureImage for any image the pod uses (a container's,
// an image volume's); who names the user in logs, container the container
// the events are about ("" for the pod).
func (m *Manager) ensureImageRef(ctx context.Context, pod *v1.Pod, userImage string, policy v1.PullPolicy, secrets []v1.Secret, sandbox *runtimeapi.PodSandboxConfig, who, container string) (pulledImage, *failure) {
	// Every step is an event about the container (the pod for an image
	// volume's image), and an Image entry of the timeline.
	event := func(e timeline.Entry) {
		e.Container = container
		if e.Kind == "" {
			e.Kind = timeline.Image
		}
		m.note(pod, e)
	}
	failed := func(reason error, e timeline.Entry, format string, args ...any) *failure {
		f := fail(reason, format, args...)
		e.Message = f.msg
		event(e)
		return f
	}
	image, err := defaultTag(userImage)
	if err != nil {
		return pulledImage{}, failed(ErrInvalidImageName,
			timeline.Entry{What: "invalid image name " + userImage, Reason: EventInspectFailed, Error: err.Error(), Event: v1.EventTypeWarning},
			"Failed to apply default image tag %q: %v", userImage, err)
	}
	spec := &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: userImage, Annotations: pod.Annotations}
	present, err := m.imageStatus(ctx, spec)
	if err != nil {
		return pulledImage{}, failed(ErrImageInspect,
			timeline.Entry{What: "inspect image " + image, Reason: EventInspectFailed, Error: err.Error(), Event: v1.EventTypeWarning},
			"Failed to inspect image %q: %v", image, err)
	}
	if policy == "" {
		policy = defaultPullPolicy(image)
	}
	pull := policy == v1.PullAlways || (policy == v1.PullIfNotPresent && present == nil)
	if !pull {
		if present != nil {
			event(timeline.Entry{What: "image present " + image, Reason: EventPulled, Event: v1.EventTypeNormal,
				Message: fmt.Sprintf("Container image %q already present on machine and can be accessed by the pod", userImage)})
			return *present, nil
		}
		return pulledImage{}, failed(ErrImageNeverPull,
			timeline.Entry{What: "image absent, pull policy Never: " + image, Reason: EventErrImageNeverPull, Event: v1.EventTypeWarning},
			"Container image %q is not present with pull policy of Never", image)
	}

	key := string(pod.UID) + "_" + image
	if d := m.imageBackOff.remainingSinceUpdate(key); d > 0 {
		f := failed(ErrImagePullBackOff,
			timeline.Entry{Kind: timeline.BackOff, What: fmt.Sprintf("back-off pulling image %s (%s left)", image, d.Round(time.Millisecond)),
				Reason: EventBackOff, Took: m.imageBackOff.delay(key), Event: v1.EventTypeNormal},
			"Back-off pulling image %q", image)
		f.retry = d
		return pulledImage{}, f
	}
	event(timeline.Entry{What: "pull image " + image, Reason: EventPulling, Message: fmt.Sprintf("Pulling image %q", image), Event: v1.EventTypeNormal})
	begin := m.clock.Now()
	ref, err := m.pull(ctx, spec, secrets, sandbox)
	if err != nil {
		m.imageBackOff.next(key, m.clock.Now())
		f := failed(ErrImagePull,
			timeline.Entry{What: "pull image failed " + image, Reason: EventFailed, Error: grpcMessage(err), Took: m.clock.Since(begin), Event: v1.EventTypeWarning},
			"Failed to pull image %q: %v", image, err)
		f.retry = m.imageBackOff.remainingSinceUpdate(key)
		return pulledImage{}, f
	}
	took := m.clock.Since(begin).Truncate(time.Millisecond)
	m.imageBackOff.gc()
	m.log.Info("pulled image", "pod", podRef(pod), "for", who, "image", image, "ref", ref, "took", took)
	got, err := m.imageStatus(ctx, &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: userImage})
	var size uint64
	if got != nil {
		size = got.size
	}
	// The kubelet counts the wait for its serialized pulls apart; pulls here run
	// at once, so both figures are the pull's.
	event(timeline.Entry{What: fmt.Sprintf("pulled image %s (%d bytes)", image, size), Reason: EventPulled, Took: took, Event: v1.EventTypeNormal,
		Message: fmt.Sprintf("Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes.", image, took, took, size)})
	if err != nil || got == nil {
		// The runtime found the image by ref; its user is unknown.
		return pulledImage{ref: ref}, nil
	}
	got.ref = ref
	return *got, nil
}

// imageStatus returns the image if the runtime has it.
func (m *Manager) imageStatus(ctx context.Context, spec *runtimeapi.ImageSpec) (*pulledImage, error) {
	resp, err := m.img.ImageStatus(ctx, spec, false)
	if err != nil {
		return nil, err
	}
	img := resp.GetImage()
	if img == nil {
		return nil, nil
	}
	p := &pulledImage{ref: img.GetId(), user: img.GetUsername(), size: img.GetSize()}
	if img.GetUid() != nil {
		v := img.GetUid().GetValue()
		p.uid = &v
	}
	return p, nil
}

// pull pulls with each matching registry credential of the pull secrets in
// turn, anonymously if none matches.
func (m *Manager) pull(ctx context.Context, spec *runtimeapi.ImageSpec, secrets []v1.Secret, sandbox *runtimeapi.PodSandboxConfig) (string, error) {
	auths, err := registryAuths(spec.Image, secrets)
	if err != nil {
		return "", err
	}
	if len(auths) == 0 {
		return m.img.PullImage(ctx, spec, nil, sandbox)
	}
	var last error
	for _, a := range auths {
		ref, err := m.img.PullImage(ctx, spec, a, sandbox)
		if err == nil {
			return ref, nil
		}
		last = err
	}
	return "", last
}

// defaultTag validates an image reference and gives it the tag "latest" when it
// has neither tag nor digest (the kubelet's applyDefaultImageTag).
func defaultTag(image string) (string, error) {
	if image == "" {
		return "", fmt.Errorf("empty image name")
	}
	if _, err := name.ParseReference(image); err != nil {
		return "", err
	}
	if strings.Contains(image, "@") {
		return image, nil
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if !strings.Contains(last, ":") {
		image += ":latest"
	}
	return image, nil
}

// defaultPullPolicy is the API's default: Always for :latest, IfNotPresent for
// other tags and digests.
func defaultPullPolicy(image string) v1.PullPolicy {
	if !strings.Contains(image, "@") && strings.HasSuffix(image, ":latest") {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}

// dockerAuth is an entry of a docker config file.
type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// registryAuths returns the credentials of secrets (kubernetes.io/dockerconfigjson
// or kubernetes.io/dockercfg) for the registry of image.
func registryAuths(image string, secrets []v1.Secret) ([]*runtimeapi.AuthConfig, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, err
	}
	want := canonicalRegistry(ref.Context().RegistryStr())
	var out []*runtimeapi.AuthConfig
	for _, s := range secrets {
		var entries map[string]dockerAuth
		if data, ok := s.Data[v1.DockerConfigJsonKey]; ok {
			var cfg struct {
				Auths map[string]dockerAuth `json:"auths"`
			}
			if err := json.Unmarshal(data, &cfg); err != nil {
				return nil, fmt.Errorf("pull secret %s: %s: %w", s.Name, v1.DockerConfigJsonKey, err)
			}
			entries = cfg.Auths
		} else if data, ok := s.Data[v1.DockerConfigKey]; ok {
			if err := json.Unmarshal(data, &entries); err != nil {
				return nil, fmt.Errorf("pull secret %s: %s: %w", s.Name, v1.DockerConfigKey, err)
			}
		}
		for host, a := range entries {
			if canonicalRegistry(host) != want {
				continue
			}
			ac := &runtimeapi.AuthConfig{
				Username: a.Username, Password: a.Password, Auth: a.Auth,
				ServerAddress: host, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
			}
			if ac.Username == "" && a.Auth != "" {
				if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
					ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
				}
			}
			out = append(out, ac)
		}
	}
	return out, nil
}

// canonicalRegistry reduces a registry key ("https://index.docker.io/v1/",
// "docker.io", "ghcr.io") to its host, Docker Hub's aliases to one.
func canonicalRegistry(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "index.docker.io"
	}
	return s
}
