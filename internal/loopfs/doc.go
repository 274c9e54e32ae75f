// Package loopfs gives integration tests small filesystems of their own: an
// ext4 filesystem in a file, mounted through a loop device on a directory of the
// test's, and the means to fill it up (a full disk) and free it again.
//
// Everything is undone by the test's cleanup, which also checks that the loop
// device went away. Mounting needs root.
package loopfs
