// Package cni connects pod network namespaces to a network described by CNI
// configuration files, using libcni and the standard plugins (bridge, host-local,
// portmap, loopback).
//
// A Manager watches a configuration directory the way containerd does: the first
// file by name (*.conflist, *.conf, *.json; a single-plugin .conf is wrapped into a
// list) is the network, and a file added or changed later is picked up at the next
// call, without a restart. Attach (CNI ADD) returns an Attachment that holds
// everything Detach (CNI DEL) needs — the configuration used, the namespace path,
// the interface name, the arguments — so callers persist it and can tear the
// network down after a restart even if the configuration directory changed since.
//
// 10-nodekit.conflist beside this file is the default network `make setup`
// installs into an empty /etc/cni/net.d: bridge nodekit0, 10.88.0.0/16 from
// host-local, host ports through portmap, loopback.
package cni
