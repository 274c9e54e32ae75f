// Package atomicfile writes files so that a reader (or a process restarted after a
// crash) sees either the old content or the new content, never a torn mix.
//
// The write goes to a temporary file in the same directory, which is fsynced, renamed
// over the target and followed by an fsync of the directory, so the rename itself is
// durable. It uses only the standard library, so the tiny per-container monitor can
// use it too.
package atomicfile
