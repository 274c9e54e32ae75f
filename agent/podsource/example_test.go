package podsource_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/nodekit-dev/nodekit/agent/podsource"
)

const manifest = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx:1.27
    livenessProbe:
      httpGet: {port: 80}
`

func ExampleParse() {
	pod, err := podsource.Parse("/etc/kubernetes/manifests/web.yaml", []byte(manifest), "node-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	uidShape := regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(string(pod.UID))
	c := pod.Spec.Containers[0]
	fmt.Println("name:", pod.Namespace+"/"+pod.Name, "on", pod.Spec.NodeName)
	fmt.Println("uid is 32 hex digits:", uidShape, "and is the config hash:", pod.Annotations[podsource.AnnotationHash] == string(pod.UID))
	fmt.Println("source:", pod.Annotations[podsource.AnnotationSource])
	fmt.Println("defaults:", pod.Spec.RestartPolicy, c.ImagePullPolicy, *pod.Spec.TerminationGracePeriodSeconds,
		c.LivenessProbe.PeriodSeconds, c.LivenessProbe.HTTPGet.Path)

	_, err = podsource.Parse("web.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: web}]}\n"), "node-1")
	fmt.Println(err)
	// Output:
	// name: default/web-node-1 on node-1
	// uid is 32 hex digits: true and is the config hash: true
	// source: file
	// defaults: Always IfNotPresent 30 10 /
	// web.yaml: spec.containers[0].image: Required value
}

func ExampleManifestDir() {
	dir, err := os.MkdirTemp("", "manifests")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	for name, content := range map[string]string{"web.yaml": manifest, "broken.yaml": "kind: Pod\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			fmt.Println(err)
			return
		}
	}

	src, err := podsource.NewManifestDir(podsource.Options{Dir: dir, NodeName: "node-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx)

	u := <-src.Updates() // the first update: the whole directory
	for _, pod := range u.Pods {
		fmt.Println(u.Op, pod.Name)
	}
	for _, err := range u.Errors {
		rel, _ := filepath.Rel(dir, err.(*podsource.ManifestError).File)
		fmt.Println("rejected:", rel)
	}
	// Output:
	// SET web-node-1
	// rejected: broken.yaml
}
