//go:build !linux

package main

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"syscall"
)

func daemonProcAttr() *syscall.SysProcAttr { return nil }

func groupCommand(*exec.Cmd) {}

func (d *daemon) sweep(context.Context) error {
	return errors.New("the critest runner needs Linux")
}

func sharedMemory() map[int]struct{} { return nil }

func removeSharedMemory(map[int]struct{}, *slog.Logger) {}
