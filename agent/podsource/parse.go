package podsource

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Annotations the kubelet puts on pods from its config sources
// (k8s.io/kubernetes pkg/kubelet/types).
const (
	// AnnotationSource names the source of a pod: SourceFile for static pods.
	AnnotationSource = "kubernetes.io/config.source"
	// AnnotationHash holds the pod's UID, the hash of its manifest.
	AnnotationHash = "kubernetes.io/config.hash"
	// AnnotationSeen is when the agent first saw the pod, RFC 3339 with
	// nanoseconds. Set by ManifestDir, not by Parse.
	AnnotationSeen = "kubernetes.io/config.seen"
	// AnnotationMirror marks the API server's mirror of a static pod. It is
	// never set here and is dropped from manifests: a static pod is not a mirror.
	AnnotationMirror = "kubernetes.io/config.mirror"

	// SourceFile is the AnnotationSource value of static pods from files.
	SourceFile = "file"
)

// ManifestError says why one manifest file was not turned into a pod.
type ManifestError struct {
	File string
	// Fields are the invalid fields, with their paths
	// (spec.containers[0].image). Empty when the file could not be read or
	// decoded: then Err says why.
	Fields field.ErrorList
	Err    error
}

// Error reads like "web.yaml: spec.containers[0].image: Required value".
func (e *ManifestError) Error() string {
	msgs := make([]string, 0, len(e.Fields)+1)
	if e.Err != nil {
		msgs = append(msgs, e.Err.Error())
	}
	for _, f := range e.Fields {
		msgs = append(msgs, f.Error())
	}
	return e.File + ": " + strings.Join(msgs, "; ")
}

// Unwrap gives the read/decode error and each field error to errors.Is/As.
func (e *ManifestError) Unwrap() []error {
	errs := make([]error, 0, len(e.Fields)+1)
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	for _, f := range e.Fields {
		errs = append(errs, f)
	}
	return errs
}

// Parse turns the manifest data read from file into the static pod the agent
// runs on node nodeName, as the kubelet's file source does: the manifest must
// hold exactly one Pod (apiVersion v1, kind Pod) in YAML or JSON; the API
// server's defaults are applied and the pod validated. The pod is named
// <name>-<nodeName> (node name lowercased), its namespace defaults to
// "default", spec.nodeName is set, its UID (unless the manifest sets one) is
// a hash of the node name, the file path and the decoded manifest (so it is
// stable across restarts and changes whenever the manifest does, but not on
// a comment or formatting change), and the annotations AnnotationSource and
// AnnotationHash are set. Errors are *ManifestError naming file and field.
func Parse(file string, data []byte, nodeName string) (*v1.Pod, error) {
	if nodeName == "" {
		return nil, errors.New("podsource: parse: empty node name")
	}
	fail := func(err error) (*v1.Pod, error) { return nil, &ManifestError{File: file, Err: err} }
	invalid := func(errs field.ErrorList) (*v1.Pod, error) { return nil, &ManifestError{File: file, Fields: errs} }

	if n := yamlDocuments(data); n == 0 {
		return fail(errors.New("empty manifest"))
	} else if n > 1 {
		return fail(fmt.Errorf("%d YAML documents, a manifest holds exactly one Pod", n))
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fail(fmt.Errorf("decode: %w", err))
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return fail(fmt.Errorf("decode: manifest is not an object: %w", err))
	}
	if raw == nil {
		return fail(errors.New("empty manifest"))
	}
	if errs := checkTypeMeta(raw); len(errs) > 0 {
		return invalid(errs)
	}
	if errs := checkQuantities(raw); len(errs) > 0 {
		return invalid(errs)
	}
	pod := &v1.Pod{}
	if err := json.Unmarshal(js, pod); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return fail(fmt.Errorf("%s: cannot decode a JSON %s into %s: %w", te.Field, te.Value, te.Type, err))
		}
		return fail(fmt.Errorf("decode: %w", err))
	}

	node := strings.ToLower(nodeName)
	name := pod.Name
	if pod.UID == "" {
		pod.UID = manifestUID(file, node, pod)
	}
	applyDefaults(pod)
	errs := validatePod(pod, name)
	fullName := name + "-" + node
	if len(errs) == 0 {
		if msgs := validation.IsDNS1123Subdomain(fullName); len(msgs) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), fullName,
				"with the node name suffix: "+strings.Join(msgs, "; ")))
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}

	pod.Name = fullName
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	pod.Spec.NodeName = nodeName
	addStaticToleration(&pod.Spec)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	delete(pod.Annotations, AnnotationMirror)
	delete(pod.Annotations, AnnotationSeen)
	pod.Annotations[AnnotationSource] = SourceFile
	pod.Annotations[AnnotationHash] = string(pod.UID)
	pod.Status = v1.PodStatus{Phase: v1.PodPending}
	return pod, nil
}

// manifestUID hashes what identifies a static pod: the node, the manifest's
// path and its decoded content. 32 hex digits, the shape of the kubelet's.
func manifestUID(file, node string, pod *v1.Pod) types.UID {
	h := sha256.New()
	fmt.Fprintf(h, "host:%s\nfile:%s\n", node, file)
	content, err := json.Marshal(pod)
	if err != nil { // cannot happen for a decoded pod; hash something stable anyway
		content = []byte(err.Error())
	}
	h.Write(content)
	return types.UID(hex.EncodeToString(h.Sum(nil)[:16]))
}

func checkTypeMeta(raw map[string]any) field.ErrorList {
	var errs field.ErrorList
	for _, f := range []struct{ name, want string }{{"apiVersion", "v1"}, {"kind", "Pod"}} {
		p := field.NewPath(f.name)
		switch v, _ := raw[f.name].(string); v {
		case f.want:
		case "":
			errs = append(errs, field.Required(p, ""))
		default:
			errs = append(errs, field.NotSupported(p, v, []string{f.want}))
		}
	}
	return errs
}

// checkQuantities parses the resource quantities of the raw manifest, so a
// bad one is reported with its field path (decoding into v1.Pod would only
// say that some quantity is malformed).
func checkQuantities(raw map[string]any) field.ErrorList {
	var errs field.ErrorList
	check := func(v any, p *field.Path) {
		var s string
		switch v := v.(type) {
		case nil:
			return
		case string:
			s = v
		case json.Number:
			s = v.String()
		default:
			errs = append(errs, field.Invalid(p, v, "must be a quantity"))
			return
		}
		if _, err := resource.ParseQuantity(s); err != nil {
			errs = append(errs, field.Invalid(p, s, err.Error()))
		}
	}
	list := func(v any, p *field.Path) {
		m, _ := v.(map[string]any)
		for k, q := range m {
			check(q, p.Key(k))
		}
	}
	requirements := func(v any, p *field.Path) {
		m, _ := v.(map[string]any)
		list(m["limits"], p.Child("limits"))
		list(m["requests"], p.Child("requests"))
	}
	sp := field.NewPath("spec")
	spec, _ := raw["spec"].(map[string]any)
	for _, key := range []string{"initContainers", "containers"} {
		cs, _ := spec[key].([]any)
		for i, c := range cs {
			cm, _ := c.(map[string]any)
			requirements(cm["resources"], sp.Child(key).Index(i).Child("resources"))
		}
	}
	requirements(spec["resources"], sp.Child("resources"))
	list(spec["overhead"], sp.Child("overhead"))
	vols, _ := spec["volumes"].([]any)
	for i, v := range vols {
		vm, _ := v.(map[string]any)
		ed, _ := vm["emptyDir"].(map[string]any)
		check(ed["sizeLimit"], sp.Child("volumes").Index(i).Child("emptyDir", "sizeLimit"))
	}
	return errs
}

// yamlDocuments counts the YAML documents in data that hold something other
// than comments ("---" separates documents).
func yamlDocuments(data []byte) int {
	n, content := 0, false
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "---") && (len(line) == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\n' || line[3] == '\r') {
			if content {
				n++
			}
			content = strings.TrimSpace(line[3:]) != "" && !strings.HasPrefix(strings.TrimSpace(line[3:]), "#")
			continue
		}
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") && t != "..." {
			content = true
		}
	}
	if content {
		n++
	}
	return n
}
