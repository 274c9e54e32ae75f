package cri_test

import (
	"io"
	"log"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// pushSample serves a registry on 127.0.0.1 holding the sample image archive under
// repo:tag and returns the registry's host:port and the manifest digest.
func pushSample(t *testing.T, archive, repo string) (string, string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := tarball.ImageFromPath(testenv.Image(t, archive), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return host, d.String()
}

// Pull from a registry on 127.0.0.1 through the CRI, by tag and by digest, inspect,
// run a container from it, and remove it.
func TestPullRunAndRemoveImage(t *testing.T) {
	h := newHarness(t)
	h.start()
	host, digest := pushSample(t, "busybox", "sample/busybox:v1")
	c := ctx(t)

	byTag := host + "/sample/busybox:v1"
	resp, err := h.img.PullImage(c, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: byTag}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.ImageRef, "sha256:") {
		t.Fatalf("image ref %q is not an image id", resp.ImageRef)
	}
	byDigest := host + "/sample/busybox@" + digest
	resp2, err := h.img.PullImage(c, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: byDigest}})
	if err != nil {
		t.Fatal(err)
	}
	if resp2.ImageRef != resp.ImageRef {
		t.Fatalf("pull by digest gave %s, by tag %s", resp2.ImageRef, resp.ImageRef)
	}

	for _, ref := range []string{byTag, byDigest, resp.ImageRef} {
		st, err := h.img.ImageStatus(c, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatal(err)
		}
		img := st.GetImage()
		if img.GetId() != resp.ImageRef || !contains(img.GetRepoTags(), byTag) || !contains(img.GetRepoDigests(), byDigest) || img.GetSize() == 0 {
			t.Fatalf("ImageStatus(%s) = %v", ref, img)
		}
	}
	st, err := h.img.ImageStatus(c, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "nodekit.local/absent:1"}})
	if err != nil || st.Image != nil {
		t.Fatalf("status of an absent image: %v, %v; want nil image, no error", st, err)
	}
	list, err := h.img.ListImages(c, &runtime.ListImagesRequest{})
	if err != nil || len(list.Images) != 1 {
		t.Fatalf("ListImages = %v, %v", list, err)
	}
	filtered, _ := h.img.ListImages(c, &runtime.ListImagesRequest{Filter: &runtime.ImageFilter{Image: &runtime.ImageSpec{Image: "other:1"}}})
	if len(filtered.Images) != 0 {
		t.Fatalf("filter on another image listed %d", len(filtered.Images))
	}
	fs, err := h.img.ImageFsInfo(c, &runtime.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.Value == 0 || fs.ImageFilesystems[0].InodesUsed.Value == 0 {
		t.Fatalf("ImageFsInfo = %v, %v", fs, err)
	}

	pod, podCfg := h.runPod("pulled")
	id := h.createContainer(pod, podCfg, containerConfig("c", byTag, "sh", "-c", "echo pulled-ok"))
	h.startContainer(id)
	cs := h.waitState(id, runtime.ContainerState_CONTAINER_EXITED, 10*time.Second)
	if cs.ExitCode != 0 || !strings.Contains(readLog(t, cs.LogPath), "pulled-ok") {
		t.Fatalf("container from the pulled image: code %d", cs.ExitCode)
	}
	if cs.ImageRef != byDigest {
		t.Fatalf("container image ref %q, want the repo digest %q", cs.ImageRef, byDigest)
	}

	// Removing the image while a container uses it keeps the container working; the
	// image goes at once and removal is idempotent.
	for i := 0; i < 2; i++ {
		if _, err := h.img.RemoveImage(c, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: byTag}}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = h.img.ImageStatus(c, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: byDigest}})
	if st.GetImage() != nil {
		t.Fatal("the image is still there by digest after RemoveImage by tag")
	}
	if _, err := h.rt.RemoveContainer(c, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	fs, _ = h.img.ImageFsInfo(c, &runtime.ImageFsInfoRequest{})
	if used := fs.ImageFilesystems[0].UsedBytes.Value; used > 64<<10 {
		t.Fatalf("%d bytes of layers left after the last user went", used)
	}
}

// Named users resolve from the image's /etc/passwd; ImageStatus reports the name.
func TestImageUserByName(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("web")
	c := ctx(t)
	st, err := h.img.ImageStatus(c, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "nodekit.local/web:latest"}})
	if err != nil || st.Image.GetUsername() != "www-data" {
		t.Fatalf("web image status: %v, %v (want username www-data)", st, err)
	}
	pod, podCfg := h.runPod("user")
	id := h.createContainer(pod, podCfg, containerConfig("web", "nodekit.local/web:latest"))
	h.startContainer(id)
	h.waitState(id, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	r, err := h.rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"id"}, Timeout: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(r.Stdout), "uid=33(www-data) gid=33(www-data)") {
		t.Fatalf("id in the web container: %q", r.Stdout)
	}
	// The web server answers inside the pod's network namespace.
	waitFor(t, "httpd to answer /healthz", 10*time.Second, func() bool {
		r, err := h.rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"wget", "-qO-", "http://127.0.0.1:8080/healthz"}, Timeout: 5})
		return err == nil && string(r.Stdout) == "ok\n"
	})
}

// `nodekit-cri import` works against the store of a running daemon, which sees the
// images at once.
func TestImportCommandWhileDaemonRuns(t *testing.T) {
	h := newHarness(t)
	h.start()
	bin := testenv.Binary(t, "nodekit-cri")
	out, err := exec.Command(bin, "import", "--root", h.root, "--state", h.state, "--listen", h.sock, testenv.Image(t, "web")).CombinedOutput()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "nodekit.local/web:latest") || !strings.Contains(string(out), "sees the new images now") {
		t.Fatalf("import output does not name the image or confirm the daemon sees it:\n%s", out)
	}
	st, err := h.img.ImageStatus(ctx(t), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "nodekit.local/web:latest"}})
	if err != nil || st.Image == nil {
		t.Fatalf("the daemon does not see the imported image: %v, %v", st, err)
	}

	// Importing into another root while naming this daemon's socket fails and says
	// why, instead of claiming the daemon sees the image.
	other := t.TempDir()
	out, err = exec.Command(bin, "import", "--root", other, "--listen", h.sock, testenv.Image(t, "busybox")).CombinedOutput()
	if err == nil {
		t.Fatalf("import into another root than the daemon's succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "another --root") || strings.Contains(string(out), "sees the new images now") {
		t.Fatalf("import into another root: unclear message:\n%s", out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
