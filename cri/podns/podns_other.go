//go:build !linux

package podns

import "errors"

func pin(Options) (Pinned, error) { return nil, errors.New("pod namespaces need Linux") }

func unmount(string) error { return nil }

func adopt(Options, int) (Pinned, error) { return nil, errors.New("pod namespaces need Linux") }
