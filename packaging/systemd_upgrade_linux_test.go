//go:build linux

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdLiveUpgrade runs packaging/systemd/test-upgrade.sh: circled
// under a real systemd (Debian bookworm booted in a privileged Docker
// container), then `circlectl upgrade --binary` must keep the unit's MainPID,
// leave it active with no restart and the watchers' pids unchanged, and
// `systemctl reload` and `systemctl stop` must still work. It needs Docker,
// debootstrap and Debian's mirror (or the cached rootfs) and takes minutes
// when cold, so it runs only with CIRCLE_TEST_SYSTEMD=1.
func TestSystemdLiveUpgrade(t *testing.T) {
	if os.Getenv("CIRCLE_TEST_SYSTEMD") != "1" {
		t.Skip("SKIP: boots systemd in a privileged Docker container (debootstrap, minutes when cold): set CIRCLE_TEST_SYSTEMD=1 (make test-systemd) to run it")
	}
	root := repoRoot(t)
	cmd := exec.Command("bash", filepath.Join(root, "packaging", "systemd", "test-upgrade.sh"))
	cmd.Dir = root
	// The script builds with this toolchain's go.
	cmd.Env = append(os.Environ(), "GO="+goCmd())
	out, err := cmd.CombinedOutput()
	t.Logf("test-upgrade.sh output:\n%s", out)
	if err != nil {
		t.Fatalf("packaging/systemd/test-upgrade.sh: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if reason, ok := strings.CutPrefix(line, "SKIP: "); ok {
			t.Skipf("SKIP: packaging/systemd/test-upgrade.sh: %s", reason)
		}
	}
	if !strings.Contains(string(out), "test-upgrade.sh: all checks passed") {
		t.Fatal("test-upgrade.sh exited 0 without its final line 'all checks passed'")
	}
}
