package podruntime

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runHook runs a lifecycle handler (postStart or preStop) of a container: exec
// through CRI ExecSync, httpGet against the pod IP (or the handler's host), or
// sleep. As the kubelet, an httpGet hook fails only when the request does: the
// response status is not checked. It returns a message for the failure, or
// what the hook said when it succeeded (an exec hook's output, an httpGet
// hook's response status).
func (m *Manager) runHook(ctx context.Context, pod *v1.Pod, c *v1.Container, containerID, podIP string, h *v1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		stdout, stderr, err := m.rt.ExecSync(ctx, containerID, h.Exec.Command, 0)
		out := string(stdout) + string(stderr)
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q",
				h.Exec.Command, c.Name, podRef(pod), err, out), err
		}
		return out, nil
	case h.HTTPGet != nil:
		status, err := m.runHTTPHook(ctx, c, podIP, h.HTTPGet)
		if err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v",
				h.HTTPGet.Path, c.Name, podRef(pod), err), err
		}
		return status, nil
	case h.Sleep != nil:
		t := m.clock.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C():
			return "", nil
		case <-ctx.Done():
			return "sleep lifecycle hook interrupted", ctx.Err()
		}
	}
	err := fmt.Errorf("lifecycle handler of container %q has no exec, httpGet or sleep action", c.Name)
	return err.Error(), err
}

// runHTTPHook sends an httpGet hook's request and returns the response's
// status line.
func (m *Manager) runHTTPHook(ctx context.Context, c *v1.Container, podIP string, g *v1.HTTPGetAction) (string, error) {
	host := g.Host
	if host == "" {
		host = podIP
	}
	if host == "" {
		return "", fmt.Errorf("no pod IP to send the request to")
	}
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	p := g.Path
	if p != "" && !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	u, err := url.Parse(fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), p))
	if err != nil {
		return "", fmt.Errorf("hook URL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "kube-lifecycle/nodekit")
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	return "HTTP " + resp.Status, resp.Body.Close()
}

// resolvePort turns a port number or a container port name into a number.
func resolvePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	if p.StrVal == "" {
		return 80, nil
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q: no container port of that name", p.StrVal)
}
