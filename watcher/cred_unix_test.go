//go:build unix

package watcher

import (
	"os"
	"slices"
	"testing"
)

func intPtr(n int) *int { return &n }

// credential always sets the supplementary groups when the uid or gid
// changes, refuses a uid without a gid, and leaves circled's own identity
// alone (an unprivileged circled cannot call setgroups at all).
func TestCredential(t *testing.T) {
	if c, err := credential(Spec{}); c != nil || err != nil {
		t.Errorf("no uid/gid: %+v, %v; want nil", c, err)
	}
	if _, err := credential(Spec{UID: intPtr(1234)}); err == nil {
		t.Error("uid without gid accepted: the child would keep circled's group")
	}
	c, err := credential(Spec{UID: intPtr(1234), GID: intPtr(2345), Groups: []int{2345, 3456}})
	if err != nil || c == nil {
		t.Fatalf("credential: %+v, %v", c, err)
	}
	if c.Uid != 1234 || c.Gid != 2345 || !slices.Equal(c.Groups, []uint32{2345, 3456}) || c.NoSetGroups {
		t.Errorf("credential %+v, want uid 1234 gid 2345 groups [2345 3456], setgroups on", c)
	}
	// No groups means none, not circled's: setgroups with an empty list.
	c, err = credential(Spec{UID: intPtr(1234), GID: intPtr(2345), Groups: []int{}})
	if err != nil || c == nil || len(c.Groups) != 0 || c.NoSetGroups {
		t.Errorf("no supplementary groups: %+v, %v", c, err)
	}
	// gid alone keeps circled's uid.
	c, err = credential(Spec{GID: intPtr(2345), Groups: []int{2345}})
	if err != nil || c == nil || c.Uid != uint32(os.Getuid()) || c.Gid != 2345 || c.NoSetGroups {
		t.Errorf("gid only: %+v, %v", c, err)
	}
	// Exactly circled's own identity: nothing to change.
	own, err := os.Getgroups()
	if err != nil {
		t.Skip(err)
	}
	if os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid() {
		t.Skip("real and effective ids differ")
	}
	c, err = credential(Spec{UID: intPtr(os.Getuid()), GID: intPtr(os.Getgid()), Groups: own})
	if err != nil || c != nil {
		t.Errorf("circled's own identity: %+v, %v; want nil (no setgroups)", c, err)
	}
}
