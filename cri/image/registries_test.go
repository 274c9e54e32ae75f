package image

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const goodConfig = `
[registry."docker.io"]
mirrors = [
  "http://127.0.0.1:5000",
  { url = "https://mirror.example.com/dockerhub", ca = "/etc/ca.pem" },
  { url = "http://10.1.2.3:5000", insecure = true },
  { url = "https://artifacts.example.com/api/docker/hub", override_path = true, skip_verify = true },
]

[registry."registry.k8s.io"]
mirrors = ["https://mirror.example.com/v2"]
mirrors_only = true

[registry."myreg.local:5000"]
insecure = true
`

// endpointStrings renders endpoints as "url apiRoot flags" for comparison.
func endpointStrings(eps []endpoint) []string {
	var out []string
	for _, e := range eps {
		s := e.String() + " " + e.apiRoot
		if e.insecure {
			s += " insecure"
		}
		if e.skipVerify {
			s += " skip_verify"
		}
		if e.ca != "" {
			s += " ca=" + e.ca
		}
		out = append(out, s)
	}
	return out
}

func TestRegistryConfigEndpoints(t *testing.T) {
	rc, err := parseRegistryConfig("/etc/nodekit/registries.toml", []byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want []string
	}{
		{"index.docker.io", []string{
			"http://127.0.0.1:5000 /v2",
			"https://mirror.example.com/dockerhub /dockerhub/v2 ca=/etc/ca.pem",
			"http://10.1.2.3:5000 /v2 insecure",
			"https://artifacts.example.com/api/docker/hub /api/docker/hub skip_verify",
			"index.docker.io /v2",
		}},
		{"registry.k8s.io", []string{"https://mirror.example.com /v2"}},
		{"myreg.local:5000", []string{"myreg.local:5000 /v2 insecure"}},
		{"quay.io", []string{"quay.io /v2"}},
	}
	for _, tc := range tests {
		got := endpointStrings(rc.endpoints(tc.host))
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("endpoints(%s) =\n%s\nwant\n%s", tc.host, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	var none *registryConfig
	if got := endpointStrings(none.endpoints("quay.io")); len(got) != 1 || got[0] != "quay.io /v2" {
		t.Errorf("no config: endpoints = %v", got)
	}
}

func TestRegistryConfigErrors(t *testing.T) {
	const file = "/etc/nodekit/registries.toml"
	tests := []struct {
		name, config string
		want         []string // substrings of the error
	}{
		{"bad TOML", "[registry.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:5000\"\n", []string{file + ":2:35", "array is incomplete"}},
		{"unknown key", "[registry.\"docker.io\"]\n\nmirorrs = []\n", []string{file + ":3:1", `"registry.docker.io.mirorrs"`}},
		{"wrong type", "[registry.\"docker.io\"]\nmirrors_only = \"yes\"\n", []string{file + ":2:"}},
		{"plain HTTP to a remote mirror", "[registry.\"docker.io\"]\nmirrors = [\"http://10.0.0.1:5000\"]\n",
			[]string{file, `registry."docker.io": mirrors[0]`, "loopback", "insecure = true"}},
		{"plain HTTP with skip_verify only", "[registry.\"docker.io\"]\nmirrors = [{url = \"http://mirror.example.com\", skip_verify = true}]\n",
			[]string{`mirrors[0]`, "plain HTTP"}},
		{"scheme", "[registry.\"docker.io\"]\nmirrors = [\"ftp://127.0.0.1\"]\n", []string{"scheme must be http or https"}},
		{"no scheme", "[registry.\"docker.io\"]\nmirrors = [\"mirror.example.com\"]\n", []string{"scheme must be http or https"}},
		{"query", "[registry.\"docker.io\"]\nmirrors = [\"https://m.example.com/?x=1\"]\n", []string{"scheme://host[:port][/path] only"}},
		{"missing url", "[registry.\"docker.io\"]\nmirrors = [{insecure = true}]\n", []string{`mirrors[0]: missing "url"`}},
		{"unknown mirror key", "[registry.\"docker.io\"]\nmirrors = [{url = \"https://m.example.com\", insecure_skip = true}]\n",
			[]string{`unknown key "insecure_skip"`}},
		{"mirror key type", "[registry.\"docker.io\"]\nmirrors = [{url = \"https://m.example.com\", insecure = \"yes\"}]\n",
			[]string{"insecure: wrong type"}},
		{"mirror not a string", "[registry.\"docker.io\"]\nmirrors = [5000]\n", []string{"want a URL string"}},
		{"mirrors_only without mirrors", "[registry.\"quay.io\"]\nmirrors_only = true\n", []string{`registry."quay.io": mirrors_only`}},
		{"key with scheme", "[registry.\"https://quay.io\"]\ninsecure = true\n", []string{"without scheme or path"}},
		{"docker.io twice", "[registry.\"docker.io\"]\n[registry.\"index.docker.io\"]\n", []string{"configured twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRegistryConfig(file, []byte(tc.config))
			if err == nil {
				t.Fatal("parsed without error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !errors.Is(err, ErrRegistryConfig) {
				t.Errorf("error %v does not wrap ErrRegistryConfig", err)
			}
			if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition {
				t.Errorf("gRPC code %v, want FailedPrecondition", st.Code())
			}
		})
	}
}

func TestRegistryFileReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "registries.toml")
	rf := &registryFile{path: p}
	mirrors := func() string {
		t.Helper()
		rc, err := rf.load()
		if err != nil {
			return "error: " + err.Error()
		}
		eps := rc.endpoints("quay.io")
		return strings.Join(endpointStrings(eps[:len(eps)-1]), ",")
	}
	if got := mirrors(); got != "" {
		t.Errorf("missing file: mirrors %q", got)
	}
	write := func(s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("[registry.\"quay.io\"]\nmirrors = [\"http://127.0.0.1:1\"]\n")
	if got := mirrors(); got != "http://127.0.0.1:1 /v2" {
		t.Errorf("first version: %q", got)
	}
	write("[registry.\"quay.io\"]\nmirrors = [\"http://127.0.0.1:2\"]\n") // same size
	if got := mirrors(); got != "http://127.0.0.1:2 /v2" {
		t.Errorf("edited: %q", got)
	}
	write("[registry.\"quay.io\"\n")
	if got := mirrors(); !strings.Contains(got, p+":1:") {
		t.Errorf("broken: %q", got)
	}
	os.Remove(p)
	if got := mirrors(); got != "" {
		t.Errorf("removed: %q", got)
	}
	var none *registryFile
	if rc, err := none.load(); rc != nil || err != nil {
		t.Errorf("nil registryFile: %v, %v", rc, err)
	}
}

func TestMirrorRewrite(t *testing.T) {
	tests := []struct {
		mirror, in, want string
	}{
		{"http://127.0.0.1:5000", "https://127.0.0.1:5000/v2/library/busybox/manifests/1", "http://127.0.0.1:5000/v2/library/busybox/manifests/1"},
		{"https://m.example.com/hub", "http://m.example.com/v2/", "https://m.example.com/hub/v2/"},
		{"https://m.example.com/hub/v2", "https://m.example.com/v2/x/blobs/sha256:1", "https://m.example.com/hub/v2/x/blobs/sha256:1"},
		{"{override}https://m.example.com/api/hub", "https://m.example.com/v2/x/manifests/1", "https://m.example.com/api/hub/x/manifests/1"},
		{"https://m.example.com/hub", "https://auth.example.com/v2/token", "https://auth.example.com/v2/token"}, // another host
		{"https://m.example.com/hub", "https://m.example.com/token", "https://m.example.com/token"},             // not the API
	}
	for _, tc := range tests {
		var m any = tc.mirror
		if u, ok := strings.CutPrefix(tc.mirror, "{override}"); ok {
			m = map[string]any{"url": u, "override_path": true}
		}
		ep, err := parseMirror(m)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		tr, err := ep.transport(rtFunc(func(r *http.Request) (*http.Response, error) {
			got = r.URL.String()
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", tc.in, nil)
		if _, err := tr.RoundTrip(req); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("mirror %s: %s went to %s, want %s", tc.mirror, tc.in, got, tc.want)
		}
		if req.URL.String() != tc.in {
			t.Errorf("the caller's request was modified: %s", req.URL)
		}
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
