//go:build !linux

package tests

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death
// signal: t.Cleanup still kills the server when a test ends normally.
func dieWithParent(cmd *exec.Cmd) {}
