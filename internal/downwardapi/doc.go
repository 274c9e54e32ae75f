// Package downwardapi resolves the downward API: the values a pod may read
// about itself through env valueFrom.fieldRef/resourceFieldRef and through
// downwardAPI (and projected) volume files. Both use one implementation so a
// container's environment and its volume files never disagree.
package downwardapi
