package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodekit-dev/nodekit/internal/leakcheck"
	"github.com/nodekit-dev/nodekit/volumes"
)

// The volumes end to end: real pods on the real shim read their configMaps,
// secrets, downward API files, projected volumes, Memory emptyDirs and images
// through real mounts; the harness checks nothing is left mounted after each.

const webObjects = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  index.html: hello v1
  app.conf: color=blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: s3cret
  user: admin
`

func ptrTo[T any](v T) *T { return &v }

// TestE2EVolumes: every plugin in one pod run as a non-root user with an
// fsGroup: contents, modes, group ownership, read-only enforced in the
// container, the Memory emptyDir's sizeLimit, env from a configMap and a
// secret, the secret on a tmpfs.
func TestE2EVolumes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.writeObjects("web", webObjects)
	app := shell("app", `trap 'exit 0' TERM; `+idle)
	app.Resources = v1.ResourceRequirements{Limits: v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("64Mi")}}
	app.VolumeMounts = append(app.VolumeMounts,
		v1.VolumeMount{Name: "cfg", MountPath: "/cfg"},
		v1.VolumeMount{Name: "sec", MountPath: "/sec"},
		v1.VolumeMount{Name: "meta", MountPath: "/meta"},
		v1.VolumeMount{Name: "all", MountPath: "/all"},
		v1.VolumeMount{Name: "mem", MountPath: "/mem"},
		v1.VolumeMount{Name: "img", MountPath: "/img"},
	)
	app.Env = []v1.EnvVar{{Name: "CONF", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
		LocalObjectReference: v1.LocalObjectReference{Name: "web"}, Key: "app.conf"}}}}
	app.EnvFrom = []v1.EnvFromSource{{Prefix: "S_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}}}}
	pod := h.testPod("vols", app)
	pod.Labels = map[string]string{"app": "web"}
	pod.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: ptrTo(int64(1000)), RunAsGroup: ptrTo(int64(1000)), FSGroup: ptrTo(int64(3000))}
	pod.Spec.Volumes = append(pod.Spec.Volumes,
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "web"},
			Items:                []v1.KeyToPath{{Key: "index.html", Path: "index.html"}, {Key: "app.conf", Path: "conf/app.conf", Mode: ptrTo(int32(0o600))}}}}},
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptrTo(int32(0o400))}}},
		v1.Volume{Name: "meta", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "cpu", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu", Divisor: resource.MustParse("1m")}},
		}}}},
		v1.Volume{Name: "all", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "web"}, Items: []v1.KeyToPath{{Key: "index.html", Path: "web/index.html"}}}},
			{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Items: []v1.KeyToPath{{Key: "user", Path: "auth/user"}}}},
			{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}},
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptrTo(resource.MustParse("2Mi"))}}},
		v1.Volume{Name: "img", VolumeSource: v1.VolumeSource{Image: &v1.ImageVolumeSource{Reference: busybox, PullPolicy: v1.PullIfNotPresent}}},
	)
	h.writeManifest(pod)
	p := h.waitPod("vols", "running", 2*time.Minute, running)

	sh := func(script string) (string, int32) { return h.exec(p, "app", "sh", "-c", script) }
	for script, want := range map[string]string{
		"cat /cfg/index.html":                        "hello v1",
		"cat /cfg/conf/app.conf":                     "color=blue",
		"stat -L -c '%a %g' /cfg/conf/app.conf":      "640 3000",
		"cat /sec/password":                          "s3cret",
		"stat -L -c '%a %g' /sec/password":           "440 3000",
		"stat -c '%a' /sec/..data/":                  "2755",
		"cat /meta/labels":                           `app="web"`,
		"cat /meta/name":                             "vols-" + nodeName,
		"cat /meta/cpu":                              "500",
		"cat /all/web/index.html":                    "hello v1",
		"cat /all/auth/user":                         "admin",
		"cat /all/namespace":                         "default",
		"stat -c '%a %g' /mem":                       "2777 3000",
		"echo $CONF $S_user $S_password":             "color=blue admin s3cret",
		"id -u; id -G | tr ' ' '\\n' | grep -x 3000": "1000\n3000",
		"test -x /img/bin/busybox && echo ok":        "ok",
	} {
		if out, code := sh(script); code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("%s: exit %d, %q; want %q", script, code, strings.TrimSpace(out), want)
		}
	}
	// Read-only where the kubelet makes it so, writable elsewhere.
	for dir, writable := range map[string]bool{"/cfg": false, "/sec": false, "/meta": false, "/all": false, "/img": false, "/mem": true, "/host": true} {
		out, code := sh("echo x > " + dir + "/probe-file")
		if (code == 0) != writable {
			t.Errorf("write in %s: exit %d %q, want writable=%t", dir, code, out, writable)
		}
	}
	// The Memory emptyDir holds 2 MiB at most.
	if out, code := sh("dd if=/dev/zero of=/mem/big bs=1048576 count=3"); code == 0 || !strings.Contains(out, "No space left") {
		t.Errorf("3 MiB into a 2Mi Memory emptyDir: exit %d %q", code, out)
	}
	// The secret never touches the disk: its volume is a tmpfs.
	secDir := filepath.Join(h.rootDir, "pods", string(p.UID), "volumes", volumes.SecretPlugin)
	if m := leakcheck.Mounts(t, secDir); len(m) != 1 {
		t.Errorf("mounts under %s: %v, want the secret's tmpfs", secDir, m)
	}
}

// TestE2EConfigMapUpdate: a configMap edited while a pod reads its volume in
// a tight loop. Each new version reaches the running container (no restart),
// and no read ever sees two versions mixed: neither within one file (a
// 64 KiB value whose every line carries the version) nor across two files read
// through one resolution of ..data.
func TestE2EConfigMapUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	object := func(v int) string {
		line := fmt.Sprintf("v%d\n", v)
		big := strings.Repeat(line, 65536/len(line))
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pair\ndata:\n  a: v%d\n  b: v%d\n  big: %q\n", v, v, big)
	}
	h.writeObjects("pair", object(1))
	// The reader: for each round, the version of a and b read from one version
	// directory, and the distinct lines of big; anything mixed goes to
	// /host/mixed; the last version seen to /host/seen.
	reader := shell("reader", `trap 'exit 0' TERM; cd /host
while true; do
  d=$(readlink /cfg/..data) || continue
  a=$(cat /cfg/$d/a 2>/dev/null) || continue
  b=$(cat /cfg/$d/b 2>/dev/null) || continue
  [ "$a" = "$b" ] || echo "a=$a b=$b" >> mixed
  n=$(sort -u /cfg/big | wc -l)
  [ "$n" = 1 ] || echo "big has $n versions" >> mixed
  echo "$a" > seen.tmp && mv seen.tmp seen
done`)
	reader.VolumeMounts = append(reader.VolumeMounts, v1.VolumeMount{Name: "cfg", MountPath: "/cfg"})
	pod := h.testPod("reader", reader)
	pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "pair"}}}})
	h.writeManifest(pod)
	p := h.waitPod("reader", "running", 2*time.Minute, running)
	seen := func() string {
		b, _ := os.ReadFile(filepath.Join(h.hostDir, "seen"))
		return strings.TrimSpace(string(b))
	}
	waitFor(t, "the reader to read v1", time.Minute, func() bool { return seen() == "v1" })
	const versions = 20
	for v := 2; v <= versions; v++ {
		h.writeObjects("pair", object(v))
		want := "v" + strconv.Itoa(v)
		waitFor(t, "the reader to see "+want, time.Minute, func() bool { return seen() == want })
	}
	if mixed, err := os.ReadFile(filepath.Join(h.hostDir, "mixed")); err == nil {
		t.Errorf("reads saw versions mixed:\n%s", mixed)
	}
	after := h.pod("reader")
	if cs := containerStatus(after, "reader"); cs.RestartCount != 0 || cs.ContainerID != containerStatus(p, "reader").ContainerID {
		t.Errorf("the reader restarted: %+v", cs)
	}
}

// TestE2EVolumeErrors: what the kubelet reports for bad references, and that
// fixing the object lets the pod start without touching it.
func TestE2EVolumeErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.writeObjects("web", webObjects)
	waiting := func(name, container, reason, msg string) {
		t.Helper()
		h.waitPod(name, reason, time.Minute, func(p *v1.Pod) bool {
			cs := containerStatus(p, container)
			return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == reason && strings.Contains(cs.State.Waiting.Message, msg)
		})
	}

	// env from a missing key: CreateContainerConfigError naming it; once the
	// key exists the container starts.
	env := shell("app", `trap 'exit 0' TERM; `+idle)
	env.Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
		LocalObjectReference: v1.LocalObjectReference{Name: "web"}, Key: "missing"}}}}
	h.writeManifest(h.testPod("envkey", env))
	waiting("envkey", "app", "CreateContainerConfigError", "couldn't find key missing in ConfigMap default/web")

	// A hostPath whose type does not match: the kubelet's message.
	file := filepath.Join(h.hostDir, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	hp := h.testPod("hostpath", shell("app", `trap 'exit 0' TERM; `+idle))
	hp.Spec.Volumes = append(hp.Spec.Volumes, v1.Volume{Name: "d", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{
		Path: file, Type: ptrTo(v1.HostPathDirectory)}}})
	h.writeManifest(hp)
	waiting("hostpath", "app", "FailedMount", `MountVolume.SetUp failed for volume "d": hostPath type check failed: `+file+` is not a directory`)

	// A secret that does not exist.
	sec := h.testPod("nosecret", shell("app", `trap 'exit 0' TERM; `+idle))
	sec.Spec.Volumes = append(sec.Spec.Volumes, v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "absent"}}})
	h.writeManifest(sec)
	waiting("nosecret", "app", "FailedMount", `secrets "absent" not found`)

	// Bad input elsewhere does not disturb the rest: an object file with a key
	// that is not a valid file name, a pod whose item path leaves its volume.
	h.writeObjects("broken", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  bad/key: x\n")
	bad := h.testPod("badpod", shell("app", `trap 'exit 0' TERM; `+idle))
	bad.Spec.Volumes = append(bad.Spec.Volumes, v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "web"}, Items: []v1.KeyToPath{{Key: "app.conf", Path: "../escape"}}}}})
	h.writeManifest(bad)
	for _, want := range [][]string{
		// (the text log quotes the messages: no quotes in what is looked for)
		{"broken.yaml", "ConfigMap default/broken", "data[bad/key]: Invalid value: ", "a valid config key"},
		{"badpod.yaml", "spec.volumes[1].configMap.items[0].path: Invalid value: ", "must not contain '..'"},
	} {
		waitFor(t, "the agent to report "+want[0], time.Minute, func() bool {
			logs := h.logs.String()
			for _, w := range want {
				if !strings.Contains(logs, w) {
					return false
				}
			}
			return true
		})
	}
	if h.pod("badpod") != nil {
		t.Error("a pod with an item path leaving its volume was accepted")
	}

	// The missing key appears: the container starts, no manifest touched.
	h.writeObjects("web", strings.Replace(webObjects, "  app.conf: color=blue\n", "  app.conf: color=blue\n  missing: found\n", 1))
	p := h.waitPod("envkey", "running", 2*time.Minute, running)
	if out, _ := h.exec(p, "app", "sh", "-c", "echo $X"); strings.TrimSpace(out) != "found" {
		t.Errorf("X = %q, want found", out)
	}
}

// TestE2ESubPath: a subPath a container points out of its volume with a
// symlink is refused; a subPath of a configMap volume is a private copy that
// keeps its content when the configMap changes, while the volume follows.
func TestE2ESubPath(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.writeObjects("web", webObjects)

	// The init container plants a symlink to / where the app's subPath is.
	init := shell("plant", `ln -s / /data/escape && mkdir -p /data/fine && echo planted > /data/fine/f`)
	init.VolumeMounts = append(init.VolumeMounts, v1.VolumeMount{Name: "data", MountPath: "/data"})
	app := shell("app", `trap 'exit 0' TERM; `+idle)
	app.VolumeMounts = append(app.VolumeMounts, v1.VolumeMount{Name: "data", MountPath: "/escaped", SubPath: "escape"})
	esc := h.testPod("escape", app)
	esc.Spec.InitContainers = []v1.Container{init}
	esc.Spec.Volumes = append(esc.Spec.Volumes, v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
	h.writeManifest(esc)
	h.waitPod("escape", "the escaping subPath refused", time.Minute, func(p *v1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError" &&
			strings.Contains(cs.State.Waiting.Message, `subPath "escape"`) && strings.Contains(cs.State.Waiting.Message, "outside the volume")
	})

	pin := shell("app", `trap 'exit 0' TERM; `+idle)
	pin.VolumeMounts = append(pin.VolumeMounts,
		v1.VolumeMount{Name: "cfg", MountPath: "/cfg"},
		v1.VolumeMount{Name: "cfg", MountPath: "/pinned.html", SubPath: "index.html"})
	pp := h.testPod("pinned", pin)
	pp.Spec.Volumes = append(pp.Spec.Volumes, v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}})
	h.writeManifest(pp)
	p := h.waitPod("pinned", "running", 2*time.Minute, running)
	if out, _ := h.exec(p, "app", "cat", "/pinned.html"); out != "hello v1" {
		t.Fatalf("/pinned.html = %q", out)
	}
	h.writeObjects("web", strings.Replace(webObjects, "hello v1", "hello v2", 1))
	waitFor(t, "the volume to follow the update", time.Minute, func() bool {
		out, _ := h.exec(p, "app", "cat", "/cfg/index.html")
		return out == "hello v2"
	})
	if out, _ := h.exec(p, "app", "cat", "/pinned.html"); out != "hello v1" {
		t.Errorf("the subPath copy changed to %q, want it pinned at hello v1", out)
	}
	if out, code := h.exec(p, "app", "sh", "-c", "echo x > /pinned.html"); code == 0 {
		t.Errorf("a configMap subPath is writable: %q", out)
	}
}

// TestE2ECompletedPodGivesVolumesBack: a pod that ran to completion keeps its
// status and logs, but its volumes (a secret's tmpfs, a Memory emptyDir) are
// torn down at once, as the kubelet does, not when its manifest goes.
func TestE2ECompletedPodGivesVolumesBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.writeObjects("web", webObjects)
	job := shell("job", `cat /sec/user > /host/user`)
	job.VolumeMounts = append(job.VolumeMounts,
		v1.VolumeMount{Name: "sec", MountPath: "/sec"}, v1.VolumeMount{Name: "mem", MountPath: "/mem"})
	pod := h.testPod("job", job)
	pod.Spec.RestartPolicy = v1.RestartPolicyNever
	pod.Spec.Volumes = append(pod.Spec.Volumes,
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds"}}},
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}})
	h.writeManifest(pod)
	p := h.waitPod("job", "Succeeded", 2*time.Minute, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if b, _ := os.ReadFile(filepath.Join(h.hostDir, "user")); string(b) != "admin" {
		t.Errorf("the job read %q from its secret", b)
	}
	vols := filepath.Join(h.rootDir, "pods", string(p.UID), "volumes")
	waitFor(t, "the completed pod's volumes torn down", time.Minute, func() bool {
		_, err := os.Stat(vols)
		return os.IsNotExist(err) && len(leakcheck.Mounts(t, filepath.Dir(vols))) == 0
	})
	if h.pod("job") == nil {
		t.Error("the completed pod is no longer listed")
	}
}
