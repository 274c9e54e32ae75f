package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
)

// runtimeSocket is the unix socket a CRI endpoint names, as the kubelet's
// --container-runtime-endpoint takes it: unix:///path, or a bare path (which
// the kubelet still accepts as a unix socket). Other schemes (tcp://, npipe://)
// are refused; so is a relative path, which unix:// cannot spell.
func runtimeSocket(endpoint string) (string, error) {
	path := endpoint
	if scheme, rest, ok := strings.Cut(endpoint, "://"); ok {
		if scheme != "unix" {
			return "", fmt.Errorf("scheme %q: want unix:///path or a socket path", scheme)
		}
		path = rest
	}
	if path == "" {
		return "", errors.New("no socket path")
	}
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("socket path %q is not absolute", path)
	}
	return path, nil
}

// dialRuntime connects to the CRI runtime and image services at endpoint. Each
// connection waits up to timeout (the config's runtimeRequestTimeout) for the
// runtime to answer Version. closeFn closes both connections.
func dialRuntime(ctx context.Context, endpoint string, timeout time.Duration) (rt internalapi.RuntimeService, img internalapi.ImageManagerService, closeFn func(), err error) {
	sock, err := runtimeSocket(endpoint)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("container runtime endpoint %q: %w", endpoint, err)
	}
	target := "unix://" + sock
	rt, err = remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(target).WithConnectionTimeout(timeout).Build(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("container runtime endpoint %q: runtime service: %w", endpoint, err)
	}
	img, err = remote.NewRemoteImageServiceBuilder().WithEndpoint(target).WithConnectionTimeout(timeout).Build(ctx)
	if err != nil {
		closeService(rt)
		return nil, nil, nil, fmt.Errorf("container runtime endpoint %q: image service: %w", endpoint, err)
	}
	return rt, img, func() { closeService(rt); closeService(img) }, nil
}

// closeService closes a CRI client that cri-client built.
func closeService(s any) {
	if c, ok := s.(interface{ Close(context.Context) error }); ok {
		_ = c.Close(context.Background())
	}
}
