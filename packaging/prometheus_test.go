//go:build linux

package packaging

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// needPromtool makes sure promtool is installed (Debian's prometheus
// package, by test-deps-prometheus.sh), or skips saying why.
func needPromtool(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err == nil {
		return
	}
	out, err := exec.Command("./test-deps-prometheus.sh").CombinedOutput()
	t.Logf("packaging/test-deps-prometheus.sh: %s", out)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 2:
		t.Skipf("no promtool: %s", strings.TrimSpace(string(out)))
	case err != nil:
		t.Fatalf("packaging/test-deps-prometheus.sh: %v", err)
	}
}

// packaging/prometheus ships a scrape config and alert rules that
// Prometheus's own checker accepts, and the alerts fire as documented
// (promtool's rule unit tests: fatal, flapping, unplanned restart rate,
// dropped log bytes).
func TestPrometheusConfigAndRules(t *testing.T) {
	needPromtool(t)
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "circled-alerts.yml"},
		{"test", "rules", "circled-alerts.test.yml"},
	} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
