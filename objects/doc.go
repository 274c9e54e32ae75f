// Package objects is where the ConfigMaps and Secrets that pods on this node
// reference come from: configMap, secret and projected volumes, and container
// environment (valueFrom.configMapKeyRef, valueFrom.secretKeyRef, envFrom).
//
// Consumers use the Source interface (lookups by namespace and name, NotFound
// errors as the API server gives them) and, to learn of changes, Notifier.
// Two implementations are here:
//
//   - Dir, for standalone mode: the manifests of a directory, watched.
//   - Static, in memory: for programs that embed the agent, and for tests.
//
// Cluster mode will implement Source and Notifier over the API server (a
// watch or an informer per referenced object, as the kubelet's managers do);
// consumers do not change.
//
// # Directory format
//
// Dir reads the files *.yaml, *.yml and *.json directly in its directory (not
// in subdirectories; names starting with "." are skipped: editors' temporary
// files). A YAML file may hold several documents separated by "---" lines; a
// document may also be a List (apiVersion v1, kind List) of objects in items;
// empty documents are skipped. Each object is a v1 ConfigMap or Secret as
// kubectl would send it:
//
//	apiVersion: v1
//	kind: ConfigMap
//	metadata:
//	  name: web
//	  namespace: shop        # "default" when omitted
//	data:
//	  nginx.conf: |
//	    worker_processes 2;
//	---
//	apiVersion: v1
//	kind: Secret
//	metadata:
//	  name: web-tls
//	  namespace: shop
//	type: kubernetes.io/tls
//	stringData:              # merged over data, as the API server does
//	  tls.crt: "-----BEGIN CERTIFICATE-----..."
//	data:
//	  tls.key: LS0tLS1CRUdJTi...   # base64
//
// Manifests are decoded strictly (an unknown field such as "dta" is an
// error, and so is a key given twice) and validated as the API server
// validates them: the name a DNS subdomain, the namespace a DNS label, the
// keys of data, binaryData and stringData valid config keys, no key in both
// data and binaryData, at most 1 MiB of data per object, base64 that decodes,
// and the keys the Secret's type requires (tls.crt and tls.key for
// kubernetes.io/tls; username or password for kubernetes.io/basic-auth;
// ssh-privatekey for kubernetes.io/ssh-auth; .dockerconfigjson, valid JSON,
// for kubernetes.io/dockerconfigjson; .dockercfg for kubernetes.io/dockercfg;
// the service-account.name annotation for
// kubernetes.io/service-account-token). The metadata the API server sets
// (uid, resourceVersion, creationTimestamp, managedFields...) is ignored in a
// manifest; served objects get their own: a UID derived from kind, namespace
// and name, a resourceVersion that changes whenever the content (data,
// binaryData, type, immutable, labels, annotations) does, and the time the
// object was first seen as creationTimestamp. immutable is served as written:
// the files are the truth, so an "immutable" object whose file changes does
// change.
//
// # Errors
//
// Errors do not stop the rest from being served. Each is a *FileError, which
// names the file (the directory path joined with the file name), the
// document's index when the file holds more than one, the object and the
// field path, with the API server's wording:
//
//	objects/app.yaml: document 2: ConfigMap default/web: data[bad/key]: Invalid value: "bad/key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')
//	objects/list.yaml: Secret default/db: items[1].data[password]: Invalid value: "<secret contents redacted>": not valid base64: illegal base64 data at input byte 4
//	objects/broken.yaml: document 3: yaml: line 14: mapping values are not allowed in this context
//
// Dir.Errors returns the current errors; each distinct error is logged once
// (Warn) when it appears.
//
// When a document is invalid, the other documents of its file are served,
// and the last valid version of its object read from that file stays served:
// a typo while editing does not take a Secret away from running pods. When an
// invalid document cannot be tied to one object (a YAML syntax error, a bad
// kind or name, an unreadable file), every object the file defined before
// stays served until the file is fixed. Deleting a file deletes its objects.
// The same object (kind, namespace, name) in two files is an error naming
// both; the one in the file whose name sorts first is served.
//
// # Changes
//
// Dir.Run watches the directory (inotify through fsnotify) and rescans it
// when something changes, draining the events that arrived together first;
// a rescan reads again only the files whose size, modification time or inode
// changed. A full rescan every DirOptions.Period (20s) catches what a watch
// cannot: the directory deleted and created again (it is then watched
// again), lost events. While the directory cannot be read everything is
// kept. Write files whole (write a temporary file, then rename it): a file
// read while half written is an invalid file, its objects kept, until the
// write ends; a file found empty within 2 seconds of its modification (a
// writer truncated it and is about to write it) keeps its objects until it
// is written, or loses them 2 seconds later when it stays empty.
//
// Subscribers (Notifier) are called with the Ref of each object that was
// added, changed or deleted, after the change is visible to lookups and
// outside any lock; a consumer looks the object up again. Lookups are map
// reads under a read lock; returned objects are shared and must not be
// modified.
package objects
