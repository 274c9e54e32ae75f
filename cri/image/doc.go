// Package image is the CRI shim's image store: it pulls images from registries
// (registry v2, with auth, by tag or digest, picking the node's platform from an index),
// imports image archives (OCI image layouts and docker-archive tars), unpacks their
// layers once into content-addressed directories shared between images, and answers
// the CRI ImageService questions (get, list, remove, usage) plus layer GC.
//
// Pulls follow the registry configuration file (Options.RegistryConfig, TOML, read
// again whenever it changes): per registry, mirrors tried in order before the registry
// itself, plain HTTP only for loopback hosts or entries marked insecure, TLS options
// per endpoint. Images pulled through a mirror keep the names they were asked by.
//
// On disk, under Options.Root:
//
//	lock                      flock: every mutation holds it exclusively, reloads hold it shared
//	generation                bumped by every mutation; other processes reload when it moves
//	blobs/sha256/<hex>        manifests, indexes and configs, verbatim
//	layers/<diffid-hex>/fs    an unpacked layer, usable as an overlayfs lowerdir
//	layers/<diffid-hex>/meta.json  its disk usage
//	images/<config-hex>.json  one record per image: tags, repo digests, config, layers
//	tmp/work-*/               in-progress pulls, imports and GC trash, each with a flocked lease
//
// Several processes (the nodekit-cri daemon and `nodekit-cri import`) may share a root.
// A layer is unpacked into tmp/ and renamed into layers/ (if another process won the race
// its copy is kept and ours discarded); until the image record referencing it is written,
// the pull's lease (tmp/work-*/lease, listing the layers it holds) keeps GC away from it.
// Every blob digest and every diffID is verified while streaming.
//
// Unpacking uses package layer and needs Linux; pulling into or importing a store as
// non-root works for layers without whiteouts or device nodes.
package image
