package cri_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/internal/testenv"
)

// The images the image volume tests mount.
const (
	// volImage has two layers: the upper one overrides data/over.txt, adds
	// data/upper.txt and deletes data/gone.txt (a whiteout).
	volImage = "nodekit.local/imgvol/data:v1"
	// oneLayerImage has a single layer (mounted as a bind, not an overlay).
	oneLayerImage = "nodekit.local/imgvol/one:v1"
)

// tarEntry is one entry of a test layer: a directory (name ending in /), a
// symbolic link (link set) or a regular file.
type tarEntry struct{ name, body, link string }

func layerOf(t *testing.T, entries ...tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(1, 0)}
		case e.link != "":
			h = &tar.Header{Name: e.name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: e.link, ModTime: time.Unix(1, 0)}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// importBuiltImage builds an image of layers (base first), tags it ref and
// imports it into the in-process server's store as a docker archive; it
// returns the image id.
func (h *harness) importBuiltImage(ref string, layers ...v1.Layer) string {
	t := h.t
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	imgs, err := h.srv.Images().Import(ctx(t), &buf)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("import %s: %v, %v", ref, imgs, err)
	}
	return imgs[0].ID
}

// importVolumeImages imports volImage and oneLayerImage and returns their ids.
func (h *harness) importVolumeImages() (vol, one string) {
	h.t.Helper()
	vol = h.importBuiltImage(volImage,
		layerOf(h.t,
			tarEntry{name: "data/"},
			tarEntry{name: "data/lower.txt", body: "from-lower\n"},
			tarEntry{name: "data/over.txt", body: "lower-version\n"},
			tarEntry{name: "data/gone.txt", body: "deleted above\n"},
			tarEntry{name: "data/deep/"},
			tarEntry{name: "data/deep/inner.txt", body: "inner\n"},
			tarEntry{name: "file.txt", body: "a file\n"},
			tarEntry{name: "inside", link: "data"},                  // a link that stays in the image
			tarEntry{name: "escape", link: "../../../../../../etc"}, // a link out of it
			tarEntry{name: "absolute", link: "/data"},               // an absolute link
		),
		layerOf(h.t,
			tarEntry{name: "data/"},
			tarEntry{name: "data/over.txt", body: "upper-version\n"},
			tarEntry{name: "data/upper.txt", body: "from-upper\n"},
			tarEntry{name: "data/.wh.gone.txt"},
		),
	)
	one = h.importBuiltImage(oneLayerImage, layerOf(h.t,
		tarEntry{name: "only/"},
		tarEntry{name: "only/hello.txt", body: "single layer\n"},
	))
	return vol, one
}

// volumeMount is a CRI mount of image ref at dst, as the kubelet sends it.
func volumeMount(dst, ref, sub string) *runtime.Mount {
	return &runtime.Mount{ContainerPath: dst, Image: &runtime.ImageSpec{Image: ref}, ImageSubPath: sub}
}

// mountsUnder lists the mount points strictly below dir.
func mountsUnder(t *testing.T, dir string) []string { return leakcheck.Mounts(t, dir) }

// containerMounts lists the mount points under the state directory but those
// of the pod sandboxes (namespaces, /dev/shm): the mounts of containers,
// including any a removal moved to the trash.
func (h *harness) containerMounts() []string {
	return slices.DeleteFunc(mountsUnder(h.t, h.state), func(p string) bool {
		return strings.HasPrefix(p, filepath.Join(h.state, "sandboxes")+"/")
	})
}

// execCode runs cmd in container id and returns its exit code and output.
func (h *harness) execCode(id string, cmd ...string) (int32, string) {
	h.t.Helper()
	r, err := h.rt.ExecSync(ctx(h.t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 20})
	if err != nil {
		h.t.Fatalf("exec %q: %v", cmd, err)
	}
	return r.ExitCode, string(r.Stdout) + string(r.Stderr)
}

// checkVolumeContent checks, inside container id, the merged content of
// volImage at /vol, its sub path data/deep at /sub, and oneLayerImage at /one,
// and that none of them can be written to.
func (h *harness) checkVolumeContent(id string) {
	t := h.t
	t.Helper()
	for path, want := range map[string]string{
		"/vol/data/lower.txt": "from-lower\n",
		"/vol/data/over.txt":  "upper-version\n",
		"/vol/data/upper.txt": "from-upper\n",
		"/sub/inner.txt":      "inner\n",
		"/one/only/hello.txt": "single layer\n",
	} {
		if got := h.mustExec(id, "cat", path); got != want {
			t.Errorf("%s in the container = %q, want %q", path, got, want)
		}
	}
	if code, out := h.execCode(id, "test", "-e", "/vol/data/gone.txt"); code == 0 {
		t.Errorf("/vol/data/gone.txt, deleted by the upper layer, exists: %s", out)
	}
	if got := strings.Fields(h.mustExec(id, "ls", "-A", "/sub")); !slices.Equal(got, []string{"inner.txt"}) {
		t.Errorf("the sub path mount holds %q, want just the sub path's directory", got)
	}
	for _, dir := range []string{"/vol", "/vol/data", "/sub", "/one", "/one/only"} {
		code, out := h.execCode(id, "sh", "-c", "echo x > "+dir+"/written")
		if code == 0 {
			t.Errorf("writing in %s succeeded; an image volume is read-only", dir)
		} else if !strings.Contains(out, "Read-only file system") {
			t.Errorf("writing in %s: %q, want a read-only file system error", dir, out)
		}
	}
	for _, dst := range []string{"/vol", "/sub", "/one"} {
		line := h.mustExec(id, "sh", "-c", "grep ' "+dst+" ' /proc/self/mounts")
		if f := strings.Fields(line); len(f) < 4 || !slices.Contains(strings.Split(f[3], ","), "ro") {
			t.Errorf("mount of %s in the container: %q, want ro", dst, line)
		}
	}
}

func volumeContainer(name string, volRef, oneRef string) *runtime.ContainerConfig {
	cfg := containerConfig(name, busybox, "sleep", "1000")
	cfg.Mounts = []*runtime.Mount{
		volumeMount("/vol", volRef, ""),               // readonly unset: read-only all the same
		volumeMount("/sub", volRef, "inside/./deep/"), // through a link inside the image, uncleaned
		volumeMount("/one", oneRef, ""),
	}
	return cfg
}

// A container mounts a second image as a volume: the image's layers merged,
// read-only whatever the request says, a sub path of it, and an image of one
// layer. The images cannot be removed while the container exists, and are
// listed and counted as before. Nothing stays mounted once it is removed.
func TestImageVolume(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	volID, oneID := h.importVolumeImages()
	c := ctx(t)

	images := func() []string {
		resp, err := h.img.ListImages(c, &runtime.ListImagesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, img := range resp.Images {
			ids = append(ids, img.Id)
		}
		return ids
	}
	fsInfo := func() (uint64, uint64) {
		resp, err := h.img.ImageFsInfo(c, &runtime.ImageFsInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		u := resp.ImageFilesystems[0]
		return u.UsedBytes.Value, u.InodesUsed.Value
	}
	imagesBefore := images()
	bytesBefore, inodesBefore := fsInfo()

	pod, podCfg := h.runPod("imgvol")
	// The volume image by tag, by id and by a unique prefix of its id.
	cfg := volumeContainer("reader", volImage, strings.TrimPrefix(oneID, "sha256:")[:16])
	cfg.Mounts[1].Image.Image = volID
	id := h.runContainer(pod, podCfg, cfg)
	h.checkVolumeContent(id)

	// The status reports the mounts as requested.
	st := h.status(id)
	if len(st.Mounts) != 3 {
		t.Fatalf("status mounts: %v", st.Mounts)
	}
	for i, m := range st.Mounts {
		if m.GetImage().GetImage() != cfg.Mounts[i].Image.Image || m.GetImageSubPath() != cfg.Mounts[i].ImageSubPath ||
			m.GetHostPath() != "" || m.GetContainerPath() != cfg.Mounts[i].ContainerPath {
			t.Errorf("status mount %d = %v, want %v", i, m, cfg.Mounts[i])
		}
	}
	// They live under the container's state directory.
	stateDir := filepath.Join(h.state, "containers", id)
	vols := mountsUnder(t, filepath.Join(stateDir, "image-volumes"))
	if len(vols) != 3 {
		t.Errorf("mounts under the container's image-volumes: %v, want 3", vols)
	}

	// GC-relevant image views are unaffected.
	if got := images(); !slices.Equal(got, imagesBefore) {
		t.Errorf("ListImages with the volumes mounted = %v, was %v", got, imagesBefore)
	}
	if b, i := fsInfo(); b != bytesBefore || i != inodesBefore {
		t.Errorf("ImageFsInfo with the volumes mounted = %d bytes %d inodes, was %d, %d", b, i, bytesBefore, inodesBefore)
	}

	// The images it mounts cannot be removed while the container exists, by any
	// of their names; its own image can.
	for _, ref := range []string{volImage, volID, oneLayerImage, oneID} {
		_, err := h.img.RemoveImage(c, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}})
		wantCode(t, "remove "+ref+" mounted as a volume", err, codes.FailedPrecondition, id)
	}
	if got := images(); !slices.Equal(got, imagesBefore) {
		t.Errorf("images after the refused removals = %v, was %v", got, imagesBefore)
	}

	// Stopped, the container gives its mounts back; the images stay protected
	// until it is removed.
	if _, err := h.rt.StopContainer(c, &runtime.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, stateDir); len(m) != 0 {
		t.Errorf("mounts left by the stopped container: %v", m)
	}
	_, err := h.img.RemoveImage(c, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: volImage}})
	wantCode(t, "remove the volume image of an exited container", err, codes.FailedPrecondition, id)

	if _, err := h.rt.RemoveContainer(c, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if m := h.containerMounts(); len(m) != 0 {
		t.Errorf("mounts left under the state directory after RemoveContainer: %v", m)
	}
	// A container removed without ever starting takes its mounts with it.
	idle := h.createContainer(pod, podCfg, volumeContainer("idle", volImage, oneLayerImage))
	if m := mountsUnder(t, filepath.Join(h.state, "containers", idle)); len(m) != 4 {
		t.Errorf("mounts of a created container: %v, want its rootfs and 3 image volumes", m)
	}
	if _, err := h.rt.RemoveContainer(c, &runtime.RemoveContainerRequest{ContainerId: idle}); err != nil {
		t.Fatal(err)
	}
	if m := h.containerMounts(); len(m) != 0 {
		t.Errorf("mounts left under the state directory after removing a created container: %v", m)
	}

	for _, ref := range []string{volImage, oneLayerImage} {
		if _, err := h.img.RemoveImage(c, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: ref}}); err != nil {
			t.Fatalf("remove %s after the container went: %v", ref, err)
		}
		resp, err := h.img.ImageStatus(c, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: ref}})
		if err != nil || resp.Image != nil {
			t.Fatalf("status of removed %s: %v, %v", ref, resp.GetImage(), err)
		}
	}
}

// Bad image volumes are refused naming the field, and leave nothing behind.
func TestImageVolumeErrors(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	h.importVolumeImages()
	c := ctx(t)
	pod, podCfg := h.runPod("imgvol-errors")

	hostDir := t.TempDir()
	for _, tc := range []struct {
		name    string
		mount   *runtime.Mount
		code    codes.Code
		mention string
	}{
		{"parent element", volumeMount("/v", volImage, "data/../../etc"), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"parent only", volumeMount("/v", volImage, ".."), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"absolute", volumeMount("/v", volImage, "/data"), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"link out of the image", volumeMount("/v", volImage, "escape"), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"through a link out of the image", volumeMount("/v", volImage, "escape/ssl"), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"absolute link", volumeMount("/v", volImage, "absolute"), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"missing", volumeMount("/v", volImage, "data/nothing"), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"deleted by an upper layer", volumeMount("/v", volImage, "data/gone.txt"), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"a file", volumeMount("/v", volImage, "file.txt"), codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"missing image", volumeMount("/v", "nodekit.local/imgvol/absent:v1", ""), codes.NotFound, "config.mounts[1].image"},
		{"with a host path", &runtime.Mount{ContainerPath: "/v", HostPath: hostDir, Image: &runtime.ImageSpec{Image: volImage}}, codes.InvalidArgument, "config.mounts[1].host_path"},
		{"sub path without image", &runtime.Mount{ContainerPath: "/v", HostPath: hostDir, ImageSubPath: "data"}, codes.InvalidArgument, "config.mounts[1].image_sub_path"},
		{"rw option", &runtime.Mount{ContainerPath: "/v", Image: &runtime.ImageSpec{Image: volImage}, MountOptions: []string{"rw"}}, codes.InvalidArgument, "config.mounts[1].mount_options[0]"},
	} {
		cfg := containerConfig("bad", busybox, "sleep", "1000")
		// A good image volume first: it is mounted before the bad one fails.
		cfg.Mounts = []*runtime.Mount{volumeMount("/good", oneLayerImage, ""), tc.mount}
		_, err := h.rt.CreateContainer(c, &runtime.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
		wantCode(t, tc.name, err, tc.code, tc.mention)
		if m := h.containerMounts(); len(m) != 0 {
			t.Errorf("%s: mounts left after the failed create: %v", tc.name, m)
		}
		if ids, _ := os.ReadDir(filepath.Join(h.state, "containers")); len(ids) != 0 {
			t.Errorf("%s: container state left after the failed create: %v", tc.name, ids)
		}
	}
	// Nothing was created, and the name is free.
	list, err := h.rt.ListContainers(c, &runtime.ListContainersRequest{})
	if err != nil || len(list.Containers) != 0 {
		t.Fatalf("containers after failed creates: %v, %v", list.GetContainers(), err)
	}
	id := h.runContainer(pod, podCfg, volumeContainer("bad", volImage, oneLayerImage))
	h.checkVolumeContent(id)
}

// A restarted shim keeps a container's image volumes and removes them with
// it; a created container whose image volume mount went away gets it mounted
// again when it starts; a container that was never completely created loses
// its image volumes at recovery.
func TestImageVolumeShimRestart(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	h.importVolumeImages()
	c := ctx(t)
	pod, podCfg := h.runPod("imgvol-restart")

	running := h.runContainer(pod, podCfg, volumeContainer("running", volImage, oneLayerImage))
	created := h.createContainer(pod, podCfg, volumeContainer("created", volImage, oneLayerImage))
	partial := h.createContainer(pod, podCfg, volumeContainer("partial", volImage, oneLayerImage))
	partialState := filepath.Join(h.state, "containers", partial)

	h.stopServer()
	// The shim died while creating "partial", before its record was written.
	if err := os.Remove(filepath.Join(partialState, "container.json")); err != nil {
		t.Fatal(err)
	}
	// The node lost the mounts of "created" (its state directory survived).
	createdVolumes := filepath.Join(h.state, "containers", created, "image-volumes")
	for _, m := range slices.Backward(mountsUnder(t, createdVolumes)) {
		if err := unix.Unmount(m, 0); err != nil {
			t.Fatal(err)
		}
	}
	h.restart(pod)

	for _, m := range h.containerMounts() {
		if strings.Contains(m, partial) { // in its state directory or in the trash
			t.Errorf("mount of the half-created container after recovery: %s", m)
		}
	}
	if _, err := os.Stat(partialState); !os.IsNotExist(err) {
		t.Errorf("state of the half-created container after recovery: %v", err)
	}
	h.checkVolumeContent(running)
	_, err := h.img.RemoveImage(c, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: volImage}})
	wantCode(t, "remove a volume image after a restart", err, codes.FailedPrecondition, running)

	h.startContainer(created)
	h.waitState(created, runtime.ContainerState_CONTAINER_RUNNING, 10*time.Second)
	h.checkVolumeContent(created)
	if m := mountsUnder(t, createdVolumes); len(m) != 3 {
		t.Errorf("image volumes of the started container: %v, want 3 mounted again", m)
	}

	for _, id := range []string{running, created} {
		if _, err := h.rt.RemoveContainer(c, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if m := h.containerMounts(); len(m) != 0 {
		t.Errorf("mounts left under the state directory after RemoveContainer: %v", m)
	}
	if _, err := h.img.RemoveImage(c, &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: volImage}}); err != nil {
		t.Fatalf("remove the volume image after its containers went: %v", err)
	}
}

// A created container whose image volume cannot be mounted again fails to
// start, saying why, and leaves nothing mounted.
func TestImageVolumeGoneAtStart(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	h.importVolumeImages()
	c := ctx(t)
	pod, podCfg := h.runPod("imgvol-gone")

	cfg := containerConfig("ctr", busybox, "sleep", "1000")
	cfg.Mounts = []*runtime.Mount{volumeMount("/one", oneLayerImage, "only")}
	id := h.createContainer(pod, podCfg, cfg)
	resp, err := h.rt.ContainerStatus(c, &runtime.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ImageVolumes []struct {
			Mount  int      `json:"mount"`
			Layers []string `json:"layers"`
			Source string   `json:"source"`
		} `json:"imageVolumes"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil || len(info.ImageVolumes) != 1 {
		t.Fatalf("verbose status info %q: %v", resp.Info["info"], err)
	}
	mountPoint := filepath.Join(h.state, "containers", id, "image-volumes", "0")
	if want := filepath.Join(mountPoint, "only"); info.ImageVolumes[0].Source != want {
		t.Errorf("image volume source %q, want %q", info.ImageVolumes[0].Source, want)
	}
	// The mount goes, and so does the layer it was made of.
	if err := unix.Unmount(mountPoint, 0); err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(h.root, "images", "layers", strings.TrimPrefix(info.ImageVolumes[0].Layers[0], "sha256:"))
	hidden := layer + ".hidden"
	if err := os.Rename(layer, hidden); err != nil {
		t.Fatal(err)
	}
	_, err = h.rt.StartContainer(c, &runtime.StartContainerRequest{ContainerId: id})
	if err := os.Rename(hidden, layer); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "start with an image volume that cannot be mounted", err, codes.FailedPrecondition, "config.mounts[0].image")
	st := h.waitState(id, runtime.ContainerState_CONTAINER_EXITED, 10*time.Second)
	if st.Reason != "StartError" || !strings.Contains(st.Message, "config.mounts[0].image") {
		t.Errorf("status after the failed start: reason %q message %q", st.Reason, st.Message)
	}
	if _, err := h.rt.RemoveContainer(c, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if m := h.containerMounts(); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// crictl creates a container with an image volume from a container config
// file, as a user would.
func TestImageVolumeCrictl(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	h.importVolumeImages()
	crictlBin := testenv.Binary(t, "crictl")
	dir := filepath.Dir(h.root)
	crictl := crictlRunner(t, crictlBin, h.sock)
	write := func(name, content string) string { return writeFile(t, dir, name, content) }
	podJSON := write("pod.json", fmt.Sprintf(`{
  "metadata": {"name": "imgvol-crictl", "namespace": "default", "uid": "imgvol-crictl-uid", "attempt": 0},
  "log_directory": %q
}`, filepath.Join(dir, "logs")))
	ctrJSON := write("ctr.json", fmt.Sprintf(`{
  "metadata": {"name": "app"},
  "image": {"image": %q},
  "command": ["sleep", "1000"],
  "mounts": [{"container_path": "/vol", "image": {"image": %q}, "image_sub_path": "data"}],
  "log_path": "app.log"
}`, busybox, volImage))

	pod := crictl("runp", podJSON)
	ctr := crictl("create", "--no-pull", pod, ctrJSON, podJSON)
	crictl("start", ctr)
	if out := crictl("exec", "--sync", ctr, "cat", "/vol/lower.txt", "/vol/over.txt"); out != "from-lower\nupper-version" {
		t.Errorf("crictl exec cat in the image volume: %q", out)
	}
	var insp struct {
		Status struct {
			Mounts []struct {
				ContainerPath string `json:"containerPath"`
				Image         struct {
					Image string `json:"image"`
				} `json:"image"`
				ImageSubPath string `json:"imageSubPath"`
			} `json:"mounts"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(crictl("inspect", ctr)), &insp); err != nil {
		t.Fatal(err)
	}
	if m := insp.Status.Mounts; len(m) != 1 || m[0].ContainerPath != "/vol" || m[0].Image.Image != volImage || m[0].ImageSubPath != "data" {
		t.Errorf("crictl inspect mounts: %+v", m)
	}
	if out, err := exec.Command(crictlBin, "--image-endpoint", "unix://"+h.sock, "rmi", volImage).CombinedOutput(); err == nil {
		t.Errorf("crictl rmi of an image mounted as a volume succeeded: %s", out)
	}
	crictl("stop", "--timeout", "0", ctr)
	crictl("rm", ctr)
	crictl("rmi", volImage)
	crictl("stopp", pod)
	crictl("rmp", pod)
	if m := h.containerMounts(); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// In a pod with a user namespace the image volumes are id-mapped like the
// container's rootfs: the image's root-owned files belong to the pod's root.
func TestImageVolumeUserNamespace(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.importImage("busybox")
	h.importVolumeImages()
	podCfg := usernsPod("imgvol-userns", 300000)
	pod := h.runPodConfig(podCfg)
	cfg := volumeContainer("ctr", volImage, oneLayerImage)
	cfg.Linux.SecurityContext.NamespaceOptions = podCfg.Linux.SecurityContext.NamespaceOptions
	// The kubelet passes the pod's mappings with each volume of such a pod.
	m := []*runtime.IDMapping{{ContainerId: 0, HostId: 300000, Length: 65536}}
	for _, mnt := range cfg.Mounts {
		mnt.UidMappings, mnt.GidMappings = m, m
	}
	id := h.runContainer(pod, podCfg, cfg)
	h.checkVolumeContent(id)
	for _, p := range []string{"/vol/data/lower.txt", "/vol/data/upper.txt", "/sub/inner.txt", "/one/only/hello.txt"} {
		if got := strings.TrimSpace(h.mustExec(id, "stat", "-c", "%u:%g", p)); got != "0:0" {
			t.Errorf("owner of %s in the pod's user namespace: %s, want 0:0", p, got)
		}
	}
	if _, err := h.rt.RemoveContainer(ctx(t), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if m := h.containerMounts(); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}
