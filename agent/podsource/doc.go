// Package podsource reads static pods from a manifest directory, the way the
// kubelet's file source (--pod-manifest-path, staticPodPath) does.
//
// Every regular file in the directory (dotfiles and subdirectories are
// skipped) holds one Kubernetes Pod in YAML or JSON. [Parse] turns a manifest
// into the pod the agent runs: the API server's defaults applied, validated
// with the offending file and field named, the name suffixed with the node
// name, a UID derived from the manifest and the kubernetes.io/config.*
// annotations set.
//
// [ManifestDir] watches the directory with inotify (Linux) plus a full rescan
// every Period (20 s) and sends the full desired set of pods on
// [ManifestDir.Updates] whenever it changes (SET semantics: each update
// replaces the previous one). An invalid manifest is reported in
// [Update.Errors] and logged; it never disturbs the pods of other files.
package podsource
