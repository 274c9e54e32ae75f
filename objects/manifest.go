package objects

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// FileError is one error found in a file of a Dir: a syntax error, a
// document that is not a ConfigMap or Secret, an invalid field, an object
// defined twice. Its text reads like
//
//	objects/app.yaml: document 2: ConfigMap default/web: data[bad/key]: Invalid value: "bad/key": a valid config key must consist of ...
type FileError struct {
	// File is the file's path: DirOptions.Path joined with its name (or
	// DirOptions.Path itself when the directory cannot be read).
	File string
	// Document is the 1-based index of the document within the file among
	// its non-empty documents, 0 when the file holds only one or the error
	// concerns the whole file.
	Document int
	// Ref is the object concerned, zero when it could not be told (its Name
	// is empty when the manifest has none).
	Ref Ref
	// Err is what is wrong: a *field.Error (its Field a path from the
	// document's root, such as data[bad/key] or items[1].kind) when a field
	// is invalid, else the syntax, decoding, duplicate or I/O error.
	Err error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Document > 0 {
		b.WriteString(": document ")
		b.WriteString(strconv.Itoa(e.Document))
	}
	if e.Ref.Kind != "" {
		b.WriteString(": ")
		if e.Ref.Name == "" {
			b.WriteString(string(e.Ref.Kind))
		} else {
			b.WriteString(e.Ref.String())
		}
	}
	if fe, ok := e.Err.(*field.Error); ok && fe.Field == "" {
		b.WriteString(": ")
		b.WriteString(fe.ErrorBody()) // about the whole object
	} else if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *FileError) Unwrap() error { return e.Err }

// maxFileSize bounds what one manifest file may make the agent read.
const maxFileSize = 64 << 20

// isManifestName says whether a directory entry named name is read.
func isManifestName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch filepath.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// parsedObject is a valid object of a file.
type parsedObject struct {
	object
	ref Ref
	doc int // FileError.Document of its document
}

// parsedFile is what parseFile found in one file.
type parsedFile struct {
	docs int             // non-empty documents
	objs []*parsedObject // the valid objects, in file order
	// invalid are the objects (valid kind, namespace and name) whose
	// document is invalid.
	invalid []Ref
	// unidentified is set when an invalid document (or the whole file)
	// could not be tied to one object.
	unidentified bool
	errs         []error // *FileError, in file order
}

// fail records errs about ref (zero when unknown) in document doc; when
// identified, the errors concern ref only.
func (p *parsedFile) fail(file string, doc int, ref Ref, identified bool, errs ...error) {
	for _, err := range errs {
		p.errs = append(p.errs, &FileError{File: file, Document: doc, Ref: ref, Err: err})
	}
	if identified {
		p.invalid = append(p.invalid, ref)
	} else {
		p.unidentified = true
	}
}

// rawDoc is one document of a file, converted to JSON, or the error that
// prevented it.
type rawDoc struct {
	json []byte
	err  error
}

// parseFile decodes and validates the ConfigMaps and Secrets of a file.
func parseFile(file string, data []byte) parsedFile {
	var docs []rawDoc
	if filepath.Ext(file) == ".json" {
		docs = splitJSON(data)
	} else {
		docs = splitYAML(data)
	}
	p := parsedFile{docs: len(docs)}
	for i, d := range docs {
		doc := i + 1
		if len(docs) == 1 {
			doc = 0
		}
		if d.err != nil {
			p.fail(file, doc, Ref{}, false, d.err)
			continue
		}
		p.document(file, doc, d.json)
	}
	return p
}

// splitYAML splits data at its "---" lines and converts each non-empty
// document to JSON. Line numbers in errors count from the file's start.
func splitYAML(data []byte) []rawDoc {
	var (
		docs  []rawDoc
		cur   []byte
		start = 1 // line number of cur's first line
	)
	flush := func() {
		if blankYAML(cur) {
			return
		}
		// Blank lines in front keep the YAML library's line numbers right.
		text := append(bytes.Repeat([]byte{'\n'}, start-1), cur...)
		js, err := sigsyaml.YAMLToJSONStrict(text)
		if err != nil {
			// One line: "yaml: unmarshal errors:\n  line 5: ..." spans several.
			err = errors.New(strings.Join(strings.Fields(err.Error()), " "))
		} else if string(js) == "null" {
			return
		}
		docs = append(docs, rawDoc{json: js, err: err})
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, line := range lines {
		if !isDocumentSeparator(line) {
			cur = append(cur, line...)
			continue
		}
		flush()
		cur, start = nil, i+2
		if rest := bytes.TrimSpace(line[3:]); len(rest) > 0 && rest[0] != '#' {
			// "--- {a: b}": the document starts on the separator's line.
			cur, start = append([]byte("   "), line[3:]...), i+1
		}
	}
	flush()
	return docs
}

func isDocumentSeparator(line []byte) bool {
	return bytes.HasPrefix(line, []byte("---")) &&
		(len(line) == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n')
}

// blankYAML says whether a document holds only blank lines, comments,
// directives and document end markers.
func blankYAML(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && line[0] != '%' && !bytes.Equal(line, []byte("...")) {
			return false
		}
	}
	return true
}

// splitJSON splits data into its JSON values (a .json file usually holds
// one). A syntax error ends the file, naming the line.
func splitJSON(data []byte) []rawDoc {
	var docs []rawDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return docs
		}
		if err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				err = fmt.Errorf("line %d: %w", 1+bytes.Count(data[:min(int(syn.Offset), len(data))], []byte("\n")), err)
			} else if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("line %d: unexpected end of JSON input", 1+bytes.Count(data, []byte("\n")))
			}
			return append(docs, rawDoc{err: err})
		}
		if string(raw) != "null" {
			docs = append(docs, rawDoc{json: raw})
		}
	}
}

// header is what tells a document's kind and name.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

func isJSONObject(js []byte) bool {
	js = bytes.TrimSpace(js)
	return len(js) > 0 && js[0] == '{'
}

var errNotObject = errors.New("not an object: a manifest is a mapping with apiVersion, kind and metadata")

// document decodes one document: a ConfigMap, a Secret or a v1 List of them.
func (p *parsedFile) document(file string, doc int, js []byte) {
	if !isJSONObject(js) {
		p.fail(file, doc, Ref{}, false, errNotObject)
		return
	}
	var h header
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &h); err != nil {
		p.fail(file, doc, Ref{}, false, err)
		return
	}
	if h.APIVersion == "v1" && h.Kind == "List" {
		p.list(file, doc, js)
		return
	}
	p.object(file, doc, nil, h, js)
}

// list decodes a v1 List's items.
func (p *parsedFile) list(file string, doc int, js []byte) {
	var l struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ListMeta   `json:"metadata"`
		Items           []json.RawMessage `json:"items"`
	}
	strict, err := sigsjson.UnmarshalStrict(js, &l)
	if err != nil {
		p.fail(file, doc, Ref{}, false, err)
		return
	}
	if len(strict) > 0 {
		p.fail(file, doc, Ref{}, false, strict...)
		return
	}
	for i, item := range l.Items {
		path := field.NewPath("items").Index(i)
		var h header
		if !isJSONObject(item) {
			p.fail(file, doc, Ref{}, false, fmt.Errorf("%s: %w", path, errNotObject))
			continue
		}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(item, &h); err != nil {
			p.fail(file, doc, Ref{}, false, fmt.Errorf("%s: %w", path, err))
			continue
		}
		p.object(file, doc, path, h, item)
	}
}

// object decodes one ConfigMap or Secret at path (nil for a document,
// items[i] for a List item) strictly, applies the API server's defaults and
// validates it as the API server does.
func (p *parsedFile) object(file string, doc int, path *field.Path, h header, js []byte) {
	var errs []error
	switch h.APIVersion {
	case "v1":
	case "":
		errs = append(errs, field.Required(path.Child("apiVersion"), ""))
	default:
		errs = append(errs, field.NotSupported(path.Child("apiVersion"), h.APIVersion, []string{"v1"}))
	}
	kind := Kind(h.Kind)
	supported := []string{string(KindConfigMap), string(KindSecret)}
	if path == nil {
		supported = []string{string(KindConfigMap), "List", string(KindSecret)}
	}
	switch kind {
	case KindConfigMap, KindSecret:
	case "List":
		if path != nil {
			errs = append(errs, field.NotSupported(path.Child("kind"), h.Kind, supported))
		} // else a List of another apiVersion: said above
	case "":
		errs = append(errs, field.Required(path.Child("kind"), "must be one of "+strings.Join(supported, ", ")))
	default:
		errs = append(errs, field.NotSupported(path.Child("kind"), h.Kind, supported))
	}
	var ref Ref
	if kind == KindConfigMap || kind == KindSecret {
		ref = Ref{Kind: kind, Namespace: h.Metadata.Namespace, Name: h.Metadata.Name}
		if ref.Namespace == "" {
			ref.Namespace = metav1.NamespaceDefault
		}
	}
	if len(errs) > 0 {
		p.fail(file, doc, ref, false, errs...)
		return
	}
	// An invalid document stands for its object only when its namespace
	// and name are those of an object that could exist.
	identified := ref.Name != "" && len(validation.IsDNS1123Subdomain(ref.Name)) == 0 &&
		len(validation.IsDNS1123Label(ref.Namespace)) == 0

	var o object
	if kind == KindConfigMap {
		o.cm, errs = decodeConfigMap(path, js)
	} else {
		o.sec, errs = decodeSecret(path, js)
	}
	if len(errs) > 0 {
		p.fail(file, doc, ref, identified, errs...)
		return
	}
	p.objs = append(p.objs, &parsedObject{object: o, ref: ref, doc: doc})
}

// decodeStrict decodes js into v, returning the decoding error or the
// unknown and duplicate fields (their paths from the document's root).
func decodeStrict(path *field.Path, js []byte, v any) []error {
	strict, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		if path != nil {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return []error{err}
	}
	if path != nil {
		for _, e := range strict {
			if fe, ok := e.(sigsjson.FieldError); ok {
				fe.SetFieldPath(path.String() + "." + fe.FieldPath())
			}
		}
	}
	return strict
}

// clearServerMeta drops the metadata the API server sets (a manifest saved
// with kubectl get -o yaml has it): the source sets its own.
func clearServerMeta(m *metav1.ObjectMeta) {
	m.UID = ""
	m.ResourceVersion = ""
	m.Generation = 0
	m.CreationTimestamp = metav1.Time{}
	m.DeletionTimestamp = nil
	m.DeletionGracePeriodSeconds = nil
	m.ManagedFields = nil
}

func decodeConfigMap(path *field.Path, js []byte) (*v1.ConfigMap, []error) {
	cm := &v1.ConfigMap{}
	if errs := decodeStrict(path, js, cm); len(errs) > 0 {
		return nil, errs
	}
	if cm.Namespace == "" {
		cm.Namespace = metav1.NamespaceDefault
	}
	clearServerMeta(&cm.ObjectMeta)
	if errs := validateConfigMap(path, cm); len(errs) > 0 {
		return nil, fieldErrors(errs)
	}
	return cm, nil
}

func decodeSecret(path *field.Path, js []byte) (*v1.Secret, []error) {
	// encoding/json would report a bad base64 value without its key.
	var raw struct {
		Data map[string]any `json:"data"`
	}
	if sigsjson.UnmarshalCaseSensitivePreserveInts(js, &raw) == nil {
		var errs []error
		for _, k := range slices.Sorted(maps.Keys(raw.Data)) {
			s, ok := raw.Data[k].(string)
			if !ok {
				continue // the typed decoding reports it
			}
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				errs = append(errs, field.Invalid(path.Child("data").Key(k), "<secret contents redacted>",
					"not valid base64: "+err.Error()))
			}
		}
		if len(errs) > 0 {
			return nil, errs
		}
	}
	sec := &v1.Secret{}
	if errs := decodeStrict(path, js, sec); len(errs) > 0 {
		return nil, errs
	}
	if sec.Namespace == "" {
		sec.Namespace = metav1.NamespaceDefault
	}
	if sec.Type == "" {
		sec.Type = v1.SecretTypeOpaque
	}
	clearServerMeta(&sec.ObjectMeta)
	// stringData keys are checked where they are written; the merged data
	// for size and the keys each type requires.
	errs := validateKeys(path.Child("stringData"), slices.Collect(maps.Keys(sec.StringData)))
	errs = append(errs, validateKeys(path.Child("data"), slices.Collect(maps.Keys(sec.Data)))...)
	mergeStringData(sec)
	errs = append(errs, validateSecret(path, sec)...)
	if len(errs) > 0 {
		return nil, fieldErrors(errs)
	}
	return sec, nil
}

func fieldErrors(list field.ErrorList) []error {
	errs := make([]error, len(list))
	for i, e := range list {
		errs[i] = e
	}
	return errs
}

// validateKeys checks that keys (of data, binaryData or stringData at path)
// are valid config keys: file names in volumes, variable names in envFrom.
func validateKeys(path *field.Path, keys []string) field.ErrorList {
	var errs field.ErrorList
	slices.Sort(keys)
	for _, k := range keys {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(path.Key(k), k, msg))
		}
	}
	return errs
}

func validateMeta(path *field.Path, m *metav1.ObjectMeta) field.ErrorList {
	return apivalidation.ValidateObjectMeta(m, true, apivalidation.NameIsDNSSubdomain, path.Child("metadata"))
}

// validateConfigMap checks what the API server's ValidateConfigMap checks.
func validateConfigMap(path *field.Path, cm *v1.ConfigMap) field.ErrorList {
	errs := validateMeta(path, &cm.ObjectMeta)
	errs = append(errs, validateKeys(path.Child("data"), slices.Collect(maps.Keys(cm.Data)))...)
	size := 0
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		if _, ok := cm.BinaryData[k]; ok {
			errs = append(errs, field.Invalid(path.Child("data").Key(k), k, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[k])
	}
	errs = append(errs, validateKeys(path.Child("binaryData"), slices.Collect(maps.Keys(cm.BinaryData)))...)
	for _, v := range cm.BinaryData {
		size += len(v)
	}
	if size > v1.MaxSecretSize {
		// About the whole object, as the API server reports it.
		e := field.TooLong(path, "", v1.MaxSecretSize)
		if path == nil {
			e.Field = ""
		}
		errs = append(errs, e)
	}
	return errs
}

// validateSecret checks, once stringData is merged into data and data's keys
// checked, what else the API server's ValidateSecret checks: metadata, size,
// the keys each type requires.
func validateSecret(path *field.Path, sec *v1.Secret) field.ErrorList {
	errs := validateMeta(path, &sec.ObjectMeta)
	dataPath := path.Child("data")
	size := 0
	for _, v := range sec.Data {
		size += len(v)
	}
	if size > v1.MaxSecretSize {
		errs = append(errs, field.TooLong(dataPath, "", v1.MaxSecretSize))
	}
	requireJSON := func(key string) {
		v, ok := sec.Data[key]
		if !ok {
			errs = append(errs, field.Required(dataPath.Key(key), ""))
		} else if err := json.Unmarshal(v, &map[string]any{}); err != nil {
			errs = append(errs, field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error()))
		}
	}
	switch sec.Type {
	case v1.SecretTypeServiceAccountToken:
		if sec.Annotations[v1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(path.Child("metadata", "annotations").Key(v1.ServiceAccountNameKey), ""))
		}
	case v1.SecretTypeDockercfg:
		requireJSON(v1.DockerConfigKey)
	case v1.SecretTypeDockerConfigJson:
		requireJSON(v1.DockerConfigJsonKey)
	case v1.SecretTypeBasicAuth:
		_, user := sec.Data[v1.BasicAuthUsernameKey]
		_, password := sec.Data[v1.BasicAuthPasswordKey]
		if !user && !password { // either may be empty, one must be there
			errs = append(errs, field.Required(dataPath.Key(v1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(v1.BasicAuthPasswordKey), ""))
		}
	case v1.SecretTypeSSHAuth:
		if len(sec.Data[v1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(v1.SSHAuthPrivateKey), ""))
		}
	case v1.SecretTypeTLS:
		for _, k := range []string{v1.TLSCertKey, v1.TLSPrivateKeyKey} {
			if _, ok := sec.Data[k]; !ok {
				errs = append(errs, field.Required(dataPath.Key(k), ""))
			}
		}
	}
	return errs
}
