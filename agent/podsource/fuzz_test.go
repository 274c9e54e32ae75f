package podsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// FuzzParse: a manifest Parse refuses gives a *ManifestError naming the file;
// a pod it accepts carries what a static pod must (the node's name suffix and
// nodeName, a namespace, a UID that is its config hash, the file source, the
// NoExecute toleration, phase Pending), is left unchanged by defaulting again,
// passes validation again, and, written back as a manifest under its own
// name, parses to the same pod. Seeds: the tests' manifests below and
// testdata/fuzz/FuzzParse (examples/pods).
func FuzzParse(f *testing.F) {
	f.Add([]byte(webYAML))
	f.Add([]byte(webJSON))
	f.Add([]byte(`apiVersion: v1
kind: Pod
metadata: {name: vols, namespace: kube-system, annotations: {a: b}}
spec:
  restartPolicy: OnFailure
  hostNetwork: true
  volumes:
  - name: data
    emptyDir: {sizeLimit: 1Gi}
  - name: cfg
    configMap: {name: c, items: [{key: k, path: a/b, mode: 0400}]}
  - name: dapi
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
  initContainers:
  - name: setup
    image: busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111
    restartPolicy: Always
    startupProbe: {exec: {command: ["true"]}}
  containers:
  - name: app
    image: registry.local:5000/app
    env: [{name: A, value: "$(B)"}, {name: B, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    resources: {limits: {cpu: 500m, memory: 128Mi}, requests: {cpu: "0.1"}}
    volumeMounts: [{name: data, mountPath: /data, subPath: x}, {name: cfg, mountPath: /etc/cfg}]
    livenessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 3}
    readinessProbe: {tcpSocket: {port: http}}
    ports: [{name: http, containerPort: 8080, hostPort: 8080}]
    lifecycle: {preStop: {sleep: {seconds: 2}}}
`))
	f.Add([]byte("---\n# only a comment\n---\napiVersion: v1\nkind: Pod\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"q"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"memory":1e3}}}]}}`))
	const file = "/etc/kubernetes/manifests/pod.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		pod, err := Parse(file, data, testNode)
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) || me.File != file || !strings.HasPrefix(err.Error(), file+": ") {
				t.Fatalf("error %q (%T) is not a *ManifestError naming the file", err, err)
			}
			if pod != nil {
				t.Fatalf("Parse failed (%v) but returned a pod", err)
			}
			return
		}
		own := checkStaticPod(t, pod)

		// Defaulting is idempotent and the defaulted pod is valid.
		again := pod.DeepCopy()
		applyDefaults(again)
		if a, b := mustJSON(t, pod), mustJSON(t, again); !bytes.Equal(a, b) {
			t.Fatalf("defaulting again changed the pod:\n%s\n%s", a, b)
		}
		if errs := validatePod(again, own); len(errs) > 0 {
			t.Fatalf("the accepted pod fails validation after defaulting: %v", errs.ToAggregate())
		}

		// Written back under the manifest's own name, it parses to the same pod.
		back := pod.DeepCopy()
		back.Name = own
		back.Status = v1.PodStatus{}
		manifest := mustJSON(t, back)
		pod2, err := Parse(file, manifest, testNode)
		if err != nil {
			t.Fatalf("the accepted pod, written back, does not parse: %v\n%s", err, manifest)
		}
		if a, b := mustJSON(t, pod), mustJSON(t, pod2); !bytes.Equal(a, b) {
			t.Fatalf("the pod written back parses to another pod:\n%s\n%s", a, b)
		}
	})
}

// checkStaticPod checks what Parse promises of every pod it returns and gives
// the manifest's own name.
func checkStaticPod(t *testing.T, pod *v1.Pod) string {
	t.Helper()
	own, ok := strings.CutSuffix(pod.Name, "-"+testNode)
	if !ok || own == "" {
		t.Fatalf("pod name %q lacks the node suffix -%s", pod.Name, testNode)
	}
	switch {
	case pod.Namespace == "":
		t.Fatal("no namespace")
	case pod.UID == "":
		t.Fatal("no UID")
	case pod.Spec.NodeName != testNode:
		t.Fatalf("nodeName %q", pod.Spec.NodeName)
	case pod.Annotations[AnnotationSource] != SourceFile:
		t.Fatalf("annotation %s = %q", AnnotationSource, pod.Annotations[AnnotationSource])
	case pod.Annotations[AnnotationHash] != string(pod.UID):
		t.Fatalf("annotation %s = %q, UID %q", AnnotationHash, pod.Annotations[AnnotationHash], pod.UID)
	case pod.Annotations[AnnotationMirror] != "" || pod.Annotations[AnnotationSeen] != "":
		t.Fatalf("mirror or seen annotation left: %v", pod.Annotations)
	case pod.Status.Phase != v1.PodPending:
		t.Fatalf("phase %q", pod.Status.Phase)
	case len(pod.Spec.Containers) == 0:
		t.Fatal("a pod without containers was accepted")
	}
	tolerated := false
	for _, tol := range pod.Spec.Tolerations {
		tolerated = tolerated || tol == staticPodToleration
	}
	if !tolerated {
		t.Fatalf("no NoExecute toleration: %v", pod.Spec.Tolerations)
	}
	return own
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
