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

// Issue 16: a [socket:x] section is a load error on Windows, and so are
// use_sockets and the limits Job Objects cannot hold; memory_max and
// cpu_max load.
func TestSocketsAndLimitsOnWindows(t *testing.T) {
	_, err, dir := loadString(t, "[watcher:a]\ncmd = x\nuse_sockets = true\nmemory_high = 1G\nio_weight = 5\n[socket:web]\nport = 80\n")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		dir + `\circled.ini:3: [watcher:a] use_sockets: not supported on windows`,
		dir + `\circled.ini:4: [watcher:a] memory_high: not supported on windows`,
		dir + `\circled.ini:5: [watcher:a] io_weight: not supported on windows (only on linux)`,
		dir + `\circled.ini:6: [socket:web]: sockets held by circled are not supported on windows`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
	c, err, _ := loadString(t, "[watcher:a]\ncmd = x\nmemory_max = 1G\ncpu_max = 50%\npids_max = 5\n")
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Watchers[0].Limits; l.MemoryMax != 1<<30 || l.CPUMax != 50 || l.PidsMax != 5 {
		t.Errorf("Limits %+v", l)
	}
}
