package cli

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// TestLogs: the container's log as the agent serves it, the options passed
// as the kubelet's query parameters, kubectl's messages for a default
// container, an invalid one and a missing previous instance.
func TestLogs(t *testing.T) {
	f := newFakeAgent(t)
	two := webPod()
	two.Name = "two-node-a"
	two.Spec.InitContainers = []v1.Container{{Name: "setup"}}
	two.Spec.Containers = append(two.Spec.Containers, v1.Container{Name: "sidecar"})
	f.setPods(webPod(), crashPod(), two)
	f.logs["default/web-node-a/httpd"] = "GET / 200\nGET /healthz 200\n"
	f.logs["default/crashloop-node-a/app?previous"] = "instance 2\n"
	f.logs["default/two-node-a/httpd"] = "first\n"
	f.logs["default/two-node-a/sidecar"] = "second\n"

	for _, tc := range []struct {
		args        []string
		out, errOut string
		code        int
		query       string
	}{
		{args: []string{"logs", "web-node-a"}, out: "GET / 200\nGET /healthz 200\n"},
		{args: []string{"logs", "pod/web-node-a", "-f", "--tail", "5", "--timestamps", "--since", "90s", "--limit-bytes", "100"},
			out: "GET / 200\nGET /healthz 200\n", query: "follow=true&limitBytes=100&sinceSeconds=90&tailLines=5&timestamps=true"},
		{args: []string{"logs", "crashloop-node-a", "--previous"}, out: "instance 2\n", query: "previous=true"},
		{args: []string{"logs", "web-node-a", "-p"}, code: 1,
			errOut: "Error from server (BadRequest): previous terminated container \"httpd\" in pod \"web-node-a\" not found\n"},
		{args: []string{"logs", "web-node-a", "-c", "nope"}, code: 1,
			errOut: "error: container nope is not valid for pod web-node-a out of: httpd\n"},
		{args: []string{"logs", "two-node-a"}, out: "first\n",
			errOut: "Defaulted container \"httpd\" out of: httpd, sidecar, setup (init)\n"},
		{args: []string{"logs", "two-node-a", "sidecar"}, out: "second\n"},
		{args: []string{"logs", "two-node-a", "-c", "setup"}, code: 1,
			errOut: "Error from server (NotFound): logs of default/two-node-a/setup: not found\n"},
	} {
		f.mu.Lock()
		f.queries = nil
		f.mu.Unlock()
		out, errOut, code := f.run(t, tc.args...)
		if out != tc.out || errOut != tc.errOut || code != tc.code {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out, errOut, tc.code, tc.out, tc.errOut)
		}
		f.mu.Lock()
		queries := strings.Join(f.queries, " ")
		f.mu.Unlock()
		if tc.query != "" && queries != tc.query {
			t.Errorf("%v: query %q, want %q", tc.args, queries, tc.query)
		}
	}
}
