//go:build linux

package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// TestUpgradeKeepsCounters: the metrics counters cross a live upgrade
// (UpgradeState.Counters). Three manual restarts are counted
// (circled_process_restarts_total reason manual, circled_process_exits_total);
// right after the upgrade, with nothing restarted since, GET /metrics of
// the new binary says the same, not zero.
func TestUpgradeKeepsCounters(t *testing.T) {
	b := upgradeBinaries(t)
	d := upStart(t, b, false, `[watcher:sleeper]
cmd = {child} quiet {dir}/sleeper.sig sleeper
graceful_timeout = 20
`)
	testhelper.Poll(t, 3*time.Minute, "sleeper running", func() (bool, string) {
		w := upWatcher(t, d.status(), "sleeper")
		return w.State == "active", w.State
	})
	for i := range 3 {
		d.mustCtl("restart", "sleeper")
		testhelper.Poll(t, 3*time.Minute, fmt.Sprintf("restart %d counted", i+1), func() (bool, string) {
			n := upMetric(t, d, `circled_process_restarts_total{reason="manual",watcher="sleeper"}`)
			return n == float64(i+1), fmt.Sprint(n)
		})
	}
	exits := upMetricSum(t, d, "circled_process_exits_total{", `watcher="sleeper"`)
	if exits < 3 {
		t.Fatalf("exits before the upgrade: %v, want ≥ 3", exits)
	}
	out, errs, code := d.circlectl(3*time.Minute, "upgrade", "--binary", b.new)
	if code != 0 {
		t.Fatalf("circlectl upgrade: exit %d\nstdout: %s\nstderr: %s\nlog:\n%s", code, out, errs, d.log())
	}
	if v, err := d.version(); err != nil || v.Version != upNewVersion {
		t.Fatalf("version after the upgrade: %+v, %v", v, err)
	}
	if n := upMetric(t, d, `circled_process_restarts_total{reason="manual",watcher="sleeper"}`); n != 3 {
		t.Errorf("after the upgrade: manual restarts %v, want 3 (the counters started again from zero?)", n)
	}
	if n := upMetricSum(t, d, "circled_process_exits_total{", `watcher="sleeper"`); n != exits {
		t.Errorf("after the upgrade: exits %v, want %v", n, exits)
	}
	// And counting goes on from there.
	d.mustCtl("restart", "sleeper")
	testhelper.Poll(t, 3*time.Minute, "the restart after the upgrade counted on top", func() (bool, string) {
		n := upMetric(t, d, `circled_process_restarts_total{reason="manual",watcher="sleeper"}`)
		return n == 4, fmt.Sprint(n)
	})
}

// upMetricSum adds up the samples of GET /metrics that start with
// prefix and contain label.
func upMetricSum(t *testing.T, d *upDaemon, prefix, label string) float64 {
	t.Helper()
	sum := 0.0
	for _, l := range upMetricLines(t, d) {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, label) {
			_, v, _ := strings.Cut(l, "} ")
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			sum += f
		}
	}
	return sum
}

func upMetricLines(t *testing.T, d *upDaemon) []string {
	t.Helper()
	_, body := httpGet(t, socketClient(d.socket), "http://circled/metrics")
	return strings.Split(body, "\n")
}

// upMetric is the value of the sample named exactly (name and labels as
// the exposition prints them) in GET /metrics on the control socket; -1
// when absent.
func upMetric(t *testing.T, d *upDaemon, sample string) float64 {
	t.Helper()
	for _, l := range upMetricLines(t, d) {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	return -1
}
