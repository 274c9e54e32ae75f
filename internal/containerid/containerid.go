package containerid

import (
	"fmt"
	"strings"
)

// ID is a container's ID in a pod status.
type ID struct {
	Type string // the runtime's name: nodekit, containerd, ...
	ID   string // the runtime's (CRI) container ID
}

// sep separates the type from the ID.
const sep = "://"

// Parse splits s, "<type>://<id>", at its first "://". A string without one
// is an error.
func Parse(s string) (ID, error) {
	typ, id, ok := strings.Cut(s, sep)
	if !ok {
		return ID{}, fmt.Errorf("container ID %q: not <type>://<id>", s)
	}
	return ID{Type: typ, ID: id}, nil
}

// CRIID is the runtime's ID in s: what follows "<type>://", or s itself when
// it has no type (callers that take a bare CRI ID as well).
func CRIID(s string) string {
	if id, err := Parse(s); err == nil {
		return id.ID
	}
	return s
}

// String is "<type>://<id>".
func (id ID) String() string { return id.Type + sep + id.ID }

// IsEmpty reports whether id is the zero ID (no container).
func (id ID) IsEmpty() bool { return id == ID{} }
