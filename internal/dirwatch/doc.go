// Package dirwatch tells that the entries of one directory may have changed,
// for code that then reads the directory (or a file in it) again: the static
// pod manifest directory and a followed container log's directory.
//
// A [Watcher] watches the directory itself, not its subdirectories, through
// github.com/fsnotify/fsnotify (inotify on Linux), as the kubelet's file
// source does. Every create, write, remove, rename and attribute change of an
// entry counts, so an atomic write (a temporary file renamed into place) and
// a log rotation (rename, then create) are seen; events are coalesced into at
// most one pending notification. An event queue overflow counts as a change
// (the reader rescans anyway). The watch ends, and [Watcher.Changes] is
// closed, when the directory is removed or moved away or the watch fails;
// [Watcher.Err] says why. The directory must exist when the watch starts:
// callers watch again when it appears.
package dirwatch
