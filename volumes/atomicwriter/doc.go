// Package atomicwriter writes a set of files into a directory so that a reader
// never sees old and new files mixed, in the kubelet's layout (configMap,
// secret, downwardAPI and projected volumes use it):
//
//	<dir>/..2026_12_07_14_20_00.123456789/   the files of one version
//	<dir>/..data -> ..2026_12_07_14_20_00.123456789
//	<dir>/key    -> ..data/key               one symlink per top-level name
//
// A new version is written to a new timestamped directory, then ..data is
// switched to it with one rename (atomic), then the visible names are added or
// removed and the old version deleted. A reader that resolves key through ..data
// sees one version whole.
package atomicwriter
