//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Scenario 12 (issue 19): live upgrade. One circled runs N `sleep`
// children and one flood child (`bench flood GAPFILE`: numbered,
// timestamped lines to a FileStream as fast as it can); the harness asks
// it to execute its own binary in place (POST /v1/upgrade, what
// `circlectl upgrade --binary bin/circled` sends) and measures the time
// from the request until the new circled answers GET /v1/version with
// the new upgrade count, and the longest stall of the flood child's
// output across it. No peer can replace itself under running children:
// supervisord, circus, process-compose and pm2 restart every child on an
// upgrade.

var upgradeSizes = []int{200, 2000}

// upgradeRun is one upgrade.
type upgradeRun struct {
	kind         string
	n            int
	total        time.Duration // request → the new circled answers
	reply        time.Duration // request → circled's reply (check, freeze, state written)
	gap          time.Duration // longest flood stall from the request to 1 s after the answer
	baseGap      time.Duration // longest flood stall in the 2 s before the request
	kept, before int           // children with the same pid after / before
	err          string
}

// upgradeCase is one setup's runs at one size.
type upgradeCase struct {
	kind string
	n    int
	na   string
	runs []upgradeRun
}

func runUpgrade(r *report, root string, reps int) {
	for _, n := range upgradeSizes {
		var cases []*upgradeCase
		for _, k := range kinds() {
			if k != kindSupervisord {
				cases = append(cases, &upgradeCase{kind: k, n: n})
			}
		}
		for rep := 0; rep < reps; rep++ {
			for _, c := range cases {
				if c.na != "" {
					continue
				}
				logf("upgrade n=%d %s rep %d/%d", n, kindLabel(c.kind), rep+1, reps)
				run, na := upgradeOnce(root, c.kind, n)
				if na != "" {
					c.na = na
					logf("upgrade %s: %s", kindLabel(c.kind), na)
					continue
				}
				if run.err != "" {
					r.note("upgrade n=%d %s: %s", n, kindLabel(c.kind), run.err)
				} else {
					logf("upgrade n=%d %s: answered after %v (reply %v), longest output gap %v (before: %v), %d/%d children kept",
						n, kindLabel(c.kind), run.total.Round(time.Millisecond), run.reply.Round(time.Millisecond),
						run.gap.Round(time.Millisecond), run.baseGap.Round(time.Millisecond), run.kept, run.before)
				}
				c.runs = append(c.runs, run)
			}
		}
		r.upgrade = append(r.upgrade, cases...)
	}
}

// unixHTTP is an HTTP client of the control socket sock.
func unixHTTP(sock string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// daemonVersion is the part of GET /v1/version the scenario reads.
type daemonVersion struct {
	Version      string `json:"version"`
	PID          int    `json:"pid"`
	Upgrades     int    `json:"upgrades"`
	UpgradeError string `json:"upgrade_error"`
}

func getVersion(c *http.Client) (daemonVersion, error) {
	var v daemonVersion
	resp, err := c.Get("http://circled/v1/version")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return v, fmt.Errorf("GET /v1/version: %s: %s", resp.Status, firstLine(b))
	}
	return v, json.Unmarshal(b, &v)
}

// upgradeOnce starts a circled of kind with n sleepers and the flood,
// upgrades it to its own binary and stops it. na is set when this circled
// cannot upgrade at all.
func upgradeOnce(root, kind string, n int) (run upgradeRun, na string) {
	run = upgradeRun{kind: kind, n: n}
	gapFile := filepath.Join(root, fmt.Sprintf("gaps-%s-%d-%d", kind, n, time.Now().UnixNano()))
	defer os.Remove(gapFile)
	flood := program{name: "flood", command: selfBin + " flood " + gapFile, n: 1, respawn: true,
		logFile: filepath.Join(root, "flood-"+kind+".log"), logMaxBytes: "64MB", logBackups: 1}
	d, err := start(kind, root, sleepProg(n), flood)
	if err != nil {
		run.err = err.Error()
		return run, ""
	}
	stopped := false
	defer func() {
		if !stopped {
			d.stop()
		}
		matches, _ := filepath.Glob(flood.logFile + "*")
		matches = append(matches, strings.TrimSuffix(flood.logFile, ".log")+"-*")
		for _, m := range matches {
			os.Remove(m)
		}
		os.RemoveAll(d.dir)
	}()
	if _, err := d.waitRunning(n, "sleep", 180*time.Second); err != nil {
		run.err = err.Error()
		return run, ""
	}
	// The flood runs past min_uptime and fills its pipe; the baseline
	// window is the 2 s before the request.
	time.Sleep(3 * time.Second)
	kids := children(d.pid)
	run.before = len(kids)
	bin := circledBin
	if kind == kindAlt {
		bin = altBin
	}
	c := unixHTTP(d.sock, 60*time.Second)
	v0, err := getVersion(c)
	if err != nil {
		run.err = err.Error()
		return run, ""
	}
	body, _ := json.Marshal(map[string]string{"binary": bin})
	t0 := time.Now()
	resp, err := c.Post("http://circled/v1/upgrade", "application/json", bytes.NewReader(body))
	if err != nil {
		run.err = "POST /v1/upgrade: " + err.Error()
		return run, ""
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	run.reply = time.Since(t0)
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		return run, fmt.Sprintf("n/a (this circled has no live upgrade: POST /v1/upgrade answered %s)", resp.Status)
	case resp.StatusCode != 200:
		run.err = fmt.Sprintf("POST /v1/upgrade: %s: %s", resp.Status, firstLine(rb))
		return run, ""
	}
	var reply struct {
		Upgrades int `json:"upgrades"`
	}
	json.Unmarshal(rb, &reply)
	if reply.Upgrades == 0 {
		reply.Upgrades = v0.Upgrades + 1
	}
	// The new circled answers: poll every 1 ms (refused or cut
	// connections while it executes are expected).
	fast := unixHTTP(d.sock, 5*time.Second)
	deadline := t0.Add(120 * time.Second)
	for {
		v, err := getVersion(fast)
		if err == nil && v.Upgrades >= reply.Upgrades {
			run.total = time.Since(t0)
			break
		}
		if err == nil && v.UpgradeError != "" {
			run.err = "the exec failed: " + v.UpgradeError
			return run, ""
		}
		select {
		case <-d.exited:
			run.err = fmt.Sprintf("circled exited during the upgrade: %v", d.exitErr)
			return run, ""
		default:
		}
		if time.Now().After(deadline) {
			run.err = fmt.Sprintf("the new circled did not answer within 120 s (last: %v)", err)
			return run, ""
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Second)
	after := children(d.pid)
	for _, k := range kids {
		if slices.Contains(after, k) {
			run.kept++
		}
	}
	answered := t0.Add(run.total)
	// Stop: the flood child writes its stalls on SIGTERM.
	d.stop()
	stopped = true
	gaps, err := readGaps(gapFile)
	if err != nil {
		run.err = "flood child's stalls: " + err.Error()
		return run, ""
	}
	for _, g := range gaps {
		end := g.start.Add(g.dur)
		if end.After(t0) && g.start.Before(answered.Add(time.Second)) {
			run.gap = max(run.gap, g.dur)
		} else if end.After(t0.Add(-2*time.Second)) && !end.After(t0) {
			run.baseGap = max(run.baseGap, g.dur)
		}
	}
	return run, ""
}

type stall struct {
	start time.Time
	dur   time.Duration
}

// readGaps reads the flood's stall file: "START_UNIXNANO DURATION_NS" lines.
func readGaps(path string) ([]stall, error) {
	var gs []stall
	var b []byte
	var err error
	// The child writes it on SIGTERM, before it exits; d.stop waited.
	for i := 0; i < 100; i++ {
		if b, err = os.ReadFile(path); err == nil && bytes.HasSuffix(b, []byte("end\n")) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, []byte("end\n")) {
		return nil, fmt.Errorf("%s: incomplete", path)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		s, err1 := strconv.ParseInt(f[0], 10, 64)
		d, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil {
			gs = append(gs, stall{time.Unix(0, s), time.Duration(d)})
		}
	}
	return gs, nil
}

// flood is `bench flood GAPFILE`: numbered lines with the time they were
// made ("SEQ UNIXNANO") on stdout as fast as it can, through a 4 KiB
// buffer. Every stall of 1 ms or more between two lines (the buffer's
// write blocked on a full pipe, or the process was not scheduled) is
// kept; on SIGTERM the stalls go to GAPFILE, ending with "end".
func flood(args []string) {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: bench flood GAPFILE")
		os.Exit(2)
	}
	var mu sync.Mutex
	var gaps []stall
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		mu.Lock()
		var b strings.Builder
		for _, g := range gaps {
			fmt.Fprintf(&b, "%d %d\n", g.start.UnixNano(), g.dur.Nanoseconds())
		}
		b.WriteString("end\n")
		os.WriteFile(args[0], []byte(b.String()), 0o644)
		os.Exit(0)
	}()
	w := bufio.NewWriterSize(os.Stdout, 4096)
	line := make([]byte, 0, 64)
	prev := time.Now()
	for seq := 0; ; seq++ {
		now := time.Now()
		if d := now.Sub(prev); d >= time.Millisecond {
			mu.Lock()
			gaps = append(gaps, stall{prev, d})
			mu.Unlock()
		}
		prev = now
		line = strconv.AppendInt(line[:0], int64(seq), 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, now.UnixNano(), 10)
		line = append(line, " flood\n"...)
		if _, err := w.Write(line); err != nil {
			os.Exit(1)
		}
	}
}

// upgradeSection writes scenario 12's table.
func (r *report) upgradeSection(b *strings.Builder) {
	if r.upgrade == nil {
		return
	}
	b.WriteString("\n## 12. Live upgrade: circled executes a new binary under running children (issue 19)\n\n")
	fmt.Fprintf(b, "One circled runs N `sleep` children (output discarded) and one flood child (`bench flood`: numbered lines "+
		"stamped with the time they were made, through a 4 KiB buffer, to a `FileStream` with `max_bytes = 64MB`, as fast as it can). "+
		"After 3 s the harness sends `POST /v1/upgrade {\"binary\": CIRCLED}` (what `circlectl upgrade --binary CIRCLED` sends; "+
		"the binary is circled's own, so the new process runs the same code) and polls `GET /v1/version` every 1 ms until it "+
		"answers with the new upgrade count. **Answer** is from the request until then; **reply** is the part until circled's "+
		"reply (the `__upgrade-check` run, the freeze, the state written), before it executes the binary. The flood child keeps "+
		"every stall of ≥ 1 ms between two consecutive lines (the largest difference between consecutive line timestamps): "+
		"**gap** is the longest one overlapping the window from the request to 1 s after the answer, **gap before** the longest "+
		"in the 2 s before the request (scheduling noise on this shared 2-core machine). **Kept** is the children of circled with the "+
		"same pid 1 s after the answer, of those before. A fresh daemon per run, %d runs per size.\n\n", r.plan.upgradeReps)
	b.WriteString("No peer in these benchmarks can do this: supervisord, circus, process-compose, ochinchina/supervisord and pm2 restart " +
		"every child when they are upgraded (their cost is scenario 6's SIGTERM plus scenario 1's launch at the same N), so there is no " +
		"side-by-side column; systemd (`daemon-reexec`) is the one supervisor that re-executes itself in place.\n\n")
	b.WriteString("| children | setup | answer (ms, median) | min | max | reply (ms, median) | gap (ms, median) | gap max | gap before (ms, max) | kept | notes |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, c := range r.upgrade {
		if c.na != "" {
			fmt.Fprintf(b, "| %d | %s | — | — | — | — | — | — | — | — | %s |\n", c.n, kindLabel(c.kind), c.na)
			continue
		}
		var total, reply, gap, base []float64
		var kept []string
		var notes []string
		for i, x := range c.runs {
			if x.err != "" {
				notes = append(notes, fmt.Sprintf("run %d: %.200s", i+1, x.err))
				continue
			}
			total = append(total, float64(x.total.Microseconds())/1000)
			reply = append(reply, float64(x.reply.Microseconds())/1000)
			gap = append(gap, float64(x.gap.Microseconds())/1000)
			base = append(base, float64(x.baseGap.Microseconds())/1000)
			kept = append(kept, fmt.Sprintf("%d/%d", x.kept, x.before))
		}
		if len(total) == 0 {
			fmt.Fprintf(b, "| %d | %s | — | — | — | — | — | — | — | — | %s |\n", c.n, kindLabel(c.kind), strings.ReplaceAll(strings.Join(notes, "; "), "|", "\\|"))
			continue
		}
		t, g := summarize(total), summarize(gap)
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.n, kindLabel(c.kind),
			num(t.med), num(t.min), num(t.max), num(summarize(reply).med), num(g.med), num(g.max), num(summarize(base).max),
			strings.Join(kept, ", "), strings.ReplaceAll(strings.Join(notes, "; "), "|", "\\|"))
	}
}
