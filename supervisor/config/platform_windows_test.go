//go:build windows

package config

import (
	"strings"
	"testing"
)

func TestPosixKeysRejectedOnWindows(t *testing.T) {
	_, err, _ := loadString(t, "[circled]\numask = 022\n[watcher:a]\ncmd = x\nuid = 0\ngid = 0\numask = 022\nrlimit_nofile = 10\n")
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"[circled] umask", "[watcher:a] uid", "[watcher:a] gid", "[watcher:a] umask", "[watcher:a] rlimit_nofile"} {
		if !strings.Contains(err.Error(), key+": not supported on windows") {
			t.Errorf("no error for %s in:\n%v", key, err)
		}
	}
}
