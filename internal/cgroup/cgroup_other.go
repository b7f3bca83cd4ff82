//go:build !linux

package cgroup

import (
	"os/exec"
	"syscall"
)

// Tree is circled's cgroup subtree; only Linux has one.
type Tree struct{}

// Proc is one process's cgroup.
type Proc struct{}

// Setup fails: no cgroups here.
func Setup(name string, moveSelf bool) (*Tree, error) { return nil, ErrUnsupported }

func (t *Tree) Path() string                                   { return "" }
func (t *Tree) Clone3() bool                                   { return false }
func (t *Tree) NewProc(watcher string, wid int) (*Proc, error) { return nil, ErrUnsupported }
func (t *Tree) Close()                                         {}
func Enter(dir string) error                                   { return ErrUnsupported }
func (t *Tree) Adopt(path string) (*Proc, error)               { return nil, ErrUnsupported }
func (p *Proc) Path() string                                   { return "" }
func (p *Proc) Prepare(cmd *exec.Cmd) error                    { return ErrUnsupported }
func (p *Proc) Started(pid int) error                          { return ErrUnsupported }
func (p *Proc) Pids() []int                                    { return nil }
func (p *Proc) Populated() bool                                { return false }
func (p *Proc) Signal(sig syscall.Signal, skip int)            {}
func (p *Proc) Reusable() bool                                 { return false }
func (p *Proc) Kill()                                          {}
func (p *Proc) Watch(f func()) (cancel func())                 { return func() {} }
func (p *Proc) Remove() error                                  { return nil }

// Leftovers lists nothing: no cgroups here.
func Leftovers(base string, skip int) map[string][]int { return nil }

// KillTree does nothing here.
func KillTree(path string) {}

// RemoveTree does nothing here.
func RemoveTree(path string) error { return nil }

// WatchPath does nothing here.
func WatchPath(path string, f func()) (cancel func()) { return func() {} }

// PopulatedPath is false here.
func PopulatedPath(path string) bool { return false }

// PidsPath lists nothing here.
func PidsPath(path string) []int { return nil }

// SelfLeaf is the cgroup circled moves itself into (Linux only).
const SelfLeaf = "circled"

// DirName is the directory of watcher name's cgroups (Linux only).
func DirName(name string) string { return name }

// TasksLimited is true here: without a way to tell, assume a limit on
// the number of tasks may apply.
func TasksLimited() bool { return true }
