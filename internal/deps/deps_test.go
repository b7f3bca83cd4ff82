package deps

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/circle-supervisor/circle/"

// circleDeps lists the circle packages pkg depends on (itself excluded).
func circleDeps(t *testing.T, pkg string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("SKIP: the go command is not on PATH: cannot list imports")
	}
	out, err := exec.Command(gobin, "list", "-deps", mod+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	var deps []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, mod) && p != mod+pkg {
			deps = append(deps, strings.TrimPrefix(p, mod))
		}
	}
	return deps
}

// watcher, ctl and rpc2 import no other circle package but leaf helpers
// under internal/ that themselves import none: the watcher knows nothing
// of config files or sockets, and ctl and rpc2 (supervisord's XML-RPC)
// never see the supervisor.
func TestLeafPackages(t *testing.T) {
	for _, pkg := range []string{"watcher", "ctl", "rpc2"} {
		for _, d := range circleDeps(t, pkg) {
			if !strings.HasPrefix(d, "internal/") {
				t.Errorf("%s imports %s", pkg, d)
				continue
			}
			if dd := circleDeps(t, d); len(dd) > 0 {
				t.Errorf("%s imports %s, which is no leaf: it imports %v", pkg, d, dd)
			}
		}
	}
}

// supervisor/config is pure: it imports no other circle package.
func TestConfigIsPure(t *testing.T) {
	if d := circleDeps(t, "supervisor/config"); len(d) > 0 {
		t.Errorf("supervisor/config imports %v", d)
	}
}
