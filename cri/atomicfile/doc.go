// Package atomicfile writes files so that a reader (or a process restarted after a
// crash) sees either the old content or the new content, never a torn mix.
//
// The write goes to a temporary file in the same directory, which is renamed over
// the target. WriteFile also fsyncs the file before and the directory after the
// rename, so the new content survives a crash of the machine; Replace skips both,
// for state that a reboot makes meaningless anyway (records of running processes),
// where a process crash is the only one that matters. It uses only the standard
// library, so the tiny per-container monitor can use it too.
package atomicfile
