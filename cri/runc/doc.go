// Package runc drives an OCI runtime binary (runc, or crun, which takes the same
// command line) for the operations the CRI shim performs itself: state, kill, exec,
// update and delete. Creating and starting a container is the per-container
// monitor's job (package monitor), so the shim never holds a container's stdio.
package runc
