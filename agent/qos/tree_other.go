//go:build !linux

package qos

import "errors"

func newTree(string, int) (tree, error) { return nil, errors.New("pod cgroups need Linux") }
