//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// metricsResult is scenario 10 for one daemon at one size: GET /metrics
// over the control socket (issue 17).
type metricsResult struct {
	kind   string
	n      int
	times  []float64 // ms per scrape, wall time in the harness
	ticks  int64     // daemon utime+stime over all scrapes
	bytes  int       // size of the last answer
	series int       // sample lines (not # comments) in the last answer
	na     string
}

// scrapeMetrics GETs /metrics reps times from the daemon d, one after the
// other, and reads the daemon's CPU before and after.
func scrapeMetrics(d *daemon, n, reps int) metricsResult {
	res := metricsResult{kind: d.kind, n: n}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock)
		},
	}}
	get := func() (int, string, error) {
		resp, err := client.Get("http://circled/metrics")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// One unmeasured scrape: it tells whether /metrics exists, and the
	// first one pays for lazy setup.
	code, body, err := get()
	switch {
	case err != nil:
		res.na = fmt.Sprintf("n/a (GET /metrics: %v)", err)
		return res
	case code == http.StatusNotFound:
		res.na = "n/a (GET /metrics answers 404: no /metrics in this circled)"
		return res
	case code != http.StatusOK:
		res.na = fmt.Sprintf("n/a (GET /metrics answers %d: %.100s)", code, strings.TrimSpace(body))
		return res
	}
	c0 := cpuTicks(d.pid)
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		code, body, err = get()
		el := time.Since(t0)
		if err != nil || code != http.StatusOK {
			res.na = fmt.Sprintf("scrape %d failed: %d %v", i+1, code, err)
			return res
		}
		res.times = append(res.times, float64(el.Microseconds())/1000)
	}
	res.ticks = cpuTicks(d.pid) - c0
	res.bytes = len(body)
	for _, l := range strings.Split(body, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			res.series++
		}
	}
	return res
}

func (r *report) metricsSection(b *strings.Builder) {
	if r.metrics == nil {
		return
	}
	b.WriteString("\n## 10. `/metrics` scrape (issue 17)\n\n")
	fmt.Fprintf(b, "On the long-running daemons of scenarios 3–5 (after the restart kills), the harness GETs `/metrics` over the control "+
		"socket (Go `net/http`, a new connection each), once unmeasured, then back to back: %v scrapes. Time is the harness's wall time per "+
		"scrape (connect, request, read the whole answer); CPU is the daemon's utime+stime over all measured scrapes, divided by their count "+
		"(1 tick = 10 ms, so small totals are coarse).\n\n", fmtReps(r.plan.metricsReps, metricsSizes(r.plan)))
	b.WriteString("| daemon | processes | median ms | min | max | daemon CPU ticks (total) | CPU per scrape (ms) | answer bytes | samples (lines) | scrapes |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range r.metrics {
		if m.na != "" {
			fmt.Fprintf(b, "| %s | %d | %s | — | — | — | — | — | — | — |\n", kindLabel(m.kind), m.n, m.na)
			continue
		}
		s := summarize(m.times)
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %d | %.2f | %d | %d | %d |\n", kindLabel(m.kind), m.n, num(s.med), num(s.min), num(s.max),
			m.ticks, float64(m.ticks)*10/float64(len(m.times)), m.bytes, m.series, len(m.times))
	}
}

// metricsSizes is the sizes scraped: those of plan.sizes with a count.
func metricsSizes(p plan) []int {
	var out []int
	for _, n := range p.sizes {
		if p.metricsReps[n] > 0 {
			out = append(out, n)
		}
	}
	return out
}
