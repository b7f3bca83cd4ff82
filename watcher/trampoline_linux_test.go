package watcher

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

func TestUmaskAndRlimitViaTrampoline(t *testing.T) {
	spec := testSpec(t, "tr", "sleep", 1)
	spec.Umask = 0o027
	spec.Rlimits = []Rlimit{{Name: "nofile", Value: 123}}
	w := startWatcher(t, spec)
	pid := w.PIDs()[0]
	testhelper.Eventually(t, 20*time.Second, "limits applied", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
		if err != nil {
			return false
		}
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		return strings.Contains(string(b), "Max open files            123                  123") &&
			strings.Contains(string(st), "Umask:\t0027")
	})
}
