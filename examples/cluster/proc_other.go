//go:build !linux

package main

import "syscall"

func nodeProcAttr() *syscall.SysProcAttr { return nil }
