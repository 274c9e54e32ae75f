// Package layer unpacks one image layer (an uncompressed tar stream) into a directory
// that can be used directly as an overlayfs lowerdir.
//
// Apply is the only entry point. It writes regular files, directories, symbolic and hard
// links, fifos and (when allowed) device nodes, with their modes, ownership, times and
// extended attributes, and converts OCI whiteouts into the overlayfs form: ".wh.NAME"
// becomes a 0:0 character device at NAME and ".wh..wh..opq" sets
// trusted.overlay.opaque=y on its directory.
//
// Every path is resolved beneath the target directory without following symbolic links
// (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or a component-by-component openat
// walk with O_NOFOLLOW on kernels without openat2), so a hostile layer can neither
// escape the directory nor write through a link it planted. Entries that try are
// rejected with an *UnsafeEntryError naming them.
//
// Apply runs on Linux only; elsewhere it returns an error.
package layer
