package objects

import (
	"context"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Every validation error names the file, the document when the file holds
// several, the object and the field, and the object is not served.
func TestValidationErrors(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, file, content string
		want                []string // one per error, each a substring of one error, in order
	}{
		{"apiVersion unsupported", "cm.yaml",
			"apiVersion: apps/v1\nkind: ConfigMap\nmetadata: {name: web}\n",
			[]string{`cm.yaml: ConfigMap default/web: apiVersion: Unsupported value: "apps/v1": supported values: "v1"`}},
		{"apiVersion missing", "cm.yaml",
			"kind: ConfigMap\nmetadata: {name: web}\n",
			[]string{`cm.yaml: ConfigMap default/web: apiVersion: Required value`}},
		{"kind unsupported", "cm.yaml",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n",
			[]string{`cm.yaml: kind: Unsupported value: "Pod": supported values: "ConfigMap", "List", "Secret"`}},
		{"List of another apiVersion", "cm.yaml",
			"apiVersion: apps/v1\nkind: List\nitems: []\n",
			[]string{`cm.yaml: apiVersion: Unsupported value: "apps/v1": supported values: "v1"`}},
		{"kind missing", "cm.yaml",
			"apiVersion: v1\nmetadata: {name: web}\n",
			[]string{`cm.yaml: kind: Required value`}},
		{"unknown field", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndta: {a: b}\n",
			[]string{`cm.yaml: ConfigMap default/web: unknown field "dta"`}},
		{"unknown metadata field", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, lables: {a: b}}\n",
			[]string{`cm.yaml: ConfigMap default/web: unknown field "metadata.lables"`}},
		{"value of the wrong type", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {port: 8080}\n",
			[]string{`cm.yaml: ConfigMap default/web: json: cannot unmarshal number into Go struct field ConfigMap.data of type string`}},
		{"name invalid", "cm.yaml",
			configMap("Web_1"),
			[]string{`cm.yaml: ConfigMap default/Web_1: metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain`}},
		{"name missing", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n",
			[]string{`cm.yaml: ConfigMap: metadata.name: Required value`}},
		{"namespace invalid", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: Shop}\n",
			[]string{`cm.yaml: ConfigMap Shop/web: metadata.namespace: Invalid value: "Shop": a lowercase RFC 1123 label`}},
		{"label invalid", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, labels: {app: 'not valid!'}}\n",
			[]string{`cm.yaml: ConfigMap default/web: metadata.labels: Invalid value: "not valid!"`}},
		{"data key invalid", "cm.yaml",
			configMap("web", "bad/key", "v"),
			[]string{`cm.yaml: ConfigMap default/web: data[bad/key]: Invalid value: "bad/key": a valid config key must consist of alphanumeric characters`}},
		{"data key dot-dot", "cm.yaml",
			configMap("web", "..", "v"),
			[]string{`cm.yaml: ConfigMap default/web: data[..]: Invalid value: "..": must not be '..'`}},
		{"binaryData key invalid", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\nbinaryData: {'a b': " + b64("x") + "}\n",
			[]string{`cm.yaml: ConfigMap default/web: binaryData[a b]: Invalid value: "a b"`}},
		{"key in data and binaryData", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {k: v}\nbinaryData: {k: " + b64("x") + "}\n",
			[]string{`cm.yaml: ConfigMap default/web: data[k]: Invalid value: "k": duplicate of key present in binaryData`}},
		{"ConfigMap too large", "cm.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: " + big[:1<<19] + "}\nbinaryData: {b: " + b64(big[:1<<19+1]) + "}\n",
			[]string{`cm.yaml: ConfigMap default/web: Too long: may not be more than 1048576 bytes`}},
		{"Secret base64", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {user: " + b64("admin") + ", password: 'pa$$word'}\n",
			[]string{`sec.yaml: Secret default/db: data[password]: Invalid value: "<secret contents redacted>": not valid base64: illegal base64 data at input byte 2`}},
		{"Secret data key invalid", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {'../x': " + b64("v") + "}\n",
			[]string{`sec.yaml: Secret default/db: data[../x]: Invalid value: "../x": a valid config key`,
				`sec.yaml: Secret default/db: data[../x]: Invalid value: "../x": must not start with '..'`}},
		{"Secret stringData key invalid", "sec.yaml",
			secret("db", "a b", "v"),
			[]string{`sec.yaml: Secret default/db: stringData[a b]: Invalid value: "a b"`}},
		{"Secret too large", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {a: " + b64(big[:1<<19]) + "}\nstringData: {b: " + big[:1<<19+1] + "}\n",
			[]string{`sec.yaml: Secret default/db: data: Too long: may not be more than 1048576 bytes`}},
		{"tls without keys", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: web-tls}\ntype: kubernetes.io/tls\nstringData: {ca.crt: x}\n",
			[]string{`sec.yaml: Secret default/web-tls: data[tls.crt]: Required value`,
				`sec.yaml: Secret default/web-tls: data[tls.key]: Required value`}},
		{"basic-auth without username or password", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: auth}\ntype: kubernetes.io/basic-auth\n",
			[]string{`sec.yaml: Secret default/auth: data[username]: Required value`,
				`sec.yaml: Secret default/auth: data[password]: Required value`}},
		{"ssh-auth without key", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: ssh}\ntype: kubernetes.io/ssh-auth\nstringData: {ssh-privatekey: ''}\n",
			[]string{`sec.yaml: Secret default/ssh: data[ssh-privatekey]: Required value`}},
		{"dockerconfigjson missing", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: pull}\ntype: kubernetes.io/dockerconfigjson\n",
			[]string{`sec.yaml: Secret default/pull: data[.dockerconfigjson]: Required value`}},
		{"dockerconfigjson not JSON", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: pull}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: '{auths'}\n",
			[]string{`sec.yaml: Secret default/pull: data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid character`}},
		{"dockercfg missing", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: pull}\ntype: kubernetes.io/dockercfg\n",
			[]string{`sec.yaml: Secret default/pull: data[.dockercfg]: Required value`}},
		{"service-account-token without its annotation", "sec.yaml",
			"apiVersion: v1\nkind: Secret\nmetadata: {name: tok}\ntype: kubernetes.io/service-account-token\n",
			[]string{`sec.yaml: Secret default/tok: metadata.annotations[kubernetes.io/service-account.name]: Required value`}},
		{"YAML syntax error", "bad.yaml",
			configMap("a") + "---\n# second\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n data: x\n",
			[]string{`bad.yaml: document 2: yaml: line 10: did not find expected key`}},
		{"YAML key given twice", "bad.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: b}\ndata: {c: d}\n",
			[]string{`bad.yaml: yaml: unmarshal errors: line 5: key "data" already set in map`}},
		{"JSON syntax error", "cm.json",
			"{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",,\n}\n",
			[]string{`cm.json: line 3: invalid character ','`}},
		{"JSON key given twice", "cm.json",
			`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {}, "data": {}}`,
			[]string{`cm.json: ConfigMap default/web: duplicate field "data"`}},
		{"not an object", "cm.yaml",
			"just a string\n",
			[]string{`cm.yaml: not an object`}},
		{"multi-document", "multi.yaml",
			configMap("ok") + "---\n" + configMap("web", "bad/key", "v") + "---\n" + secret("db", "password", "x"),
			[]string{`multi.yaml: document 2: ConfigMap default/web: data[bad/key]: Invalid value: "bad/key"`}},
		{"List item invalid", "list.yaml",
			"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}, data: {bad/key: v}}\n",
			[]string{`list.yaml: ConfigMap default/b: items[1].data[bad/key]: Invalid value: "bad/key"`}},
		{"List item kind", "list.yaml",
			"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List, metadata: {name: a}}\n",
			[]string{`list.yaml: items[0].kind: Unsupported value: "List": supported values: "ConfigMap", "Secret"`}},
		{"List item unknown field", "list.yaml",
			"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: a}, dta: {}}\n",
			[]string{`list.yaml: Secret default/a: unknown field "items[0].dta"`}},
		{"List item base64", "list.yaml",
			"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: a}, data: {k: '!'}}\n",
			[]string{`list.yaml: Secret default/a: items[0].data[k]: Invalid value: "<secret contents redacted>": not valid base64`}},
		{"List unknown field", "list.yaml",
			"apiVersion: v1\nkind: List\nitemz: []\n",
			[]string{`list.yaml: unknown field "itemz"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tt.file, tt.content)
			d := newDir(t, dir, 0)
			got := errorTexts(d, dir)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, want := range tt.want {
				if !strings.Contains(got[i], want) {
					t.Errorf("error %d:\n got: %s\nwant: %s", i, got[i], want)
				}
				if fe := asFileError(t, d.Errors()[i]); fe.File != filepath.Join(dir, tt.file) {
					t.Errorf("File = %q, want %q", fe.File, filepath.Join(dir, tt.file))
				}
			}
			served := 0
			switch tt.name {
			case "YAML syntax error", "List item invalid":
				served = 1 // the valid document or item
			case "multi-document":
				served = 2
			}
			if cms, secs := d.store.counts(); cms+secs != served {
				t.Errorf("%d ConfigMaps and %d Secrets served, want %d objects", cms, secs, served)
			}
		})
	}
}

// A FileError's parts can be read programmatically.
func TestFileErrorFields(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "app.yaml", configMap("ok")+"---\n"+configMap("web", "bad/key", "v"))
	d := newDir(t, dir, 0)
	errs := d.Errors()
	if len(errs) != 1 {
		t.Fatalf("errors: %v", errs)
	}
	fe := asFileError(t, errs[0])
	if fe.File != filepath.Join(dir, "app.yaml") || fe.Document != 2 || fe.Ref != cmRef("web") {
		t.Errorf("FileError %+v", fe)
	}
	var ferr *field.Error
	if !errors.As(errs[0], &ferr) || ferr.Field != "data[bad/key]" || ferr.Type != field.ErrorTypeInvalid {
		t.Errorf("field error %+v", ferr)
	}
	want := filepath.Join(dir, "app.yaml") + `: document 2: ConfigMap default/web: data[bad/key]: Invalid value: "bad/key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`
	if errs[0].Error() != want {
		t.Errorf("error:\n got: %s\nwant: %s", errs[0], want)
	}
	if got := cmData(t, d, "default", "ok", "x"); got != "" {
		t.Errorf("ok: %q", got)
	}
	if _, err := d.ConfigMap(context.Background(), "default", "web"); !apierrors.IsNotFound(err) {
		t.Errorf("web: %v", err)
	}
}
