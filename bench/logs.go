//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// logResult is one log-capture run.
type logResult struct {
	mbps       float64
	bytes      int64
	rssEnd     float64 // MiB, daemon once every byte is written
	rssMax     float64 // MiB, peak while capturing
	cpuTicks   int64   // daemon utime+stime over the run
	ok         bool
	failReason string
}

// runLogs is scenario 7: one child writes plan.logBytes of 100-byte lines;
// cat (pipe → file), circled (FileStream, max_bytes 64MB, 10 backups) and
// supervisord (stdout_logfile, maxbytes 64MB, 10 backups), interleaved.
func runLogs(r *report, root string) {
	setups := append([]string{"cat"}, kinds()...)
	// Rep 0 is a warm-up of every setup, not recorded: the first run
	// after the scenarios before it is the slowest whatever runs it.
	for rep := 0; rep <= r.plan.logReps; rep++ {
		for _, s := range setups {
			logf("log capture %s rep %d/%d (%d MiB)", s, rep, r.plan.logReps, r.plan.logBytes>>20)
			res := logOnce(s, root, r.plan.logBytes)
			if rep == 0 {
				syscall.Sync()
				continue
			}
			if !res.ok {
				r.note("log capture %s: %s", s, res.failReason)
			}
			r.logs[s] = append(r.logs[s], res)
			syscall.Sync()
			time.Sleep(time.Second)
		}
	}
}

func logOnce(setup, root string, total int64) logResult {
	dir, err := os.MkdirTemp(root, "log")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	logs := filepath.Join(dir, "logs")
	os.Mkdir(logs, 0o755)
	stamp := filepath.Join(dir, "stamp")
	prewarm(total + total/2)
	genCmd := fmt.Sprintf("%s gen %d %s", selfBin, total, stamp)
	var res logResult
	var d *daemon
	var sh *exec.Cmd
	shDone := make(chan error, 1)
	switch setup {
	case "cat":
		sh = exec.Command("/bin/sh", "-c", genCmd+" | cat > "+filepath.Join(logs, "out.log"))
		if err := sh.Start(); err != nil {
			fatal(err)
		}
		go func() { shDone <- sh.Wait() }()
	default:
		d, err = start(setup, dir, program{name: "gen", command: genCmd, n: 1, respawn: false,
			logFile: filepath.Join(logs, "out.log"), logMaxBytes: "64MB", logBackups: 10})
		if err != nil {
			fatal(err)
		}
		res.cpuTicks = cpuTicks(d.pid)
	}
	deadline := time.Now().Add(5 * time.Minute)
	var size int64
	lastRSS := time.Time{}
	for {
		size = dirSize(logs)
		if d != nil && time.Since(lastRSS) > 20*time.Millisecond {
			if rss, _ := rssThreads(d.pid); float64(rss)/1024 > res.rssMax {
				res.rssMax = float64(rss) / 1024
			}
			lastRSS = time.Now()
		}
		if size >= total {
			break
		}
		if time.Now().After(deadline) {
			res.failReason = fmt.Sprintf("only %d of %d bytes after 5 min", size, total)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	done := time.Now()
	b, _ := os.ReadFile(stamp)
	ns, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	el := done.Sub(time.Unix(0, ns))
	res.mbps = float64(total) / 1e6 / el.Seconds()
	if sh != nil {
		<-shDone
	}
	if d != nil {
		res.cpuTicks = cpuTicks(d.pid) - res.cpuTicks
		rss, _ := rssThreads(d.pid)
		res.rssEnd = float64(rss) / 1024
		time.Sleep(200 * time.Millisecond)
		d.stop()
	}
	res.bytes = dirSize(logs)
	if res.failReason == "" {
		if res.bytes != total {
			res.failReason = fmt.Sprintf("%d bytes in the files, want %d", res.bytes, total)
		} else {
			res.ok = true
		}
	}
	return res
}

// dirSize sums the sizes of the regular files in dir.
func dirSize(dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// churnResult is one crash-churn run.
type churnResult struct {
	label      string
	kind       string
	starts     int64
	cpuTicks   int64
	rssBefore  float64 // MiB, 2 s after launch
	rssAfter   float64 // MiB, at the end
	rssMid     float64 // MiB, half way
	rssMax     float64
	seconds    float64
	statusNote string
	dead       bool // the daemon exited (see the notes)
}

// runChurn is scenario 8: a child that exits at once (it appends one byte
// to a file, so the file's size counts the starts), for plan.churn.
func runChurn(r *report, root string) {
	type variant struct {
		label, kind string
		attempts    int
		window      string
		dur         time.Duration
	}
	vs := []variant{{"circled (flapping.attempts=10000, window 1s)", kindCircled, 10000, "1", r.plan.churn}}
	if altBin != "" {
		// The -alt circled runs the first variant only, for half the
		// time (the rates are per second and per start), so an A/B run
		// stays within its time budget.
		vs = append(vs, variant{altLabel + " (flapping.attempts=10000, window 1s)", kindAlt, 10000, "1", r.plan.churn / 2})
	}
	vs = append(vs, variant{"circled (flapping.attempts=100, window 10ms)", kindCircled, 100, "10ms", r.plan.churn})
	if haveSup {
		vs = append(vs, variant{"supervisord", kindSupervisord, 0, "", r.plan.churn})
	}
	for _, v := range vs {
		logf("crash churn %s for %v", v.label, v.dur)
		dir, err := os.MkdirTemp(root, "churn")
		if err != nil {
			fatal(err)
		}
		count := filepath.Join(dir, "count")
		d, err := start(v.kind, dir, program{name: "churn", command: fmt.Sprintf("/bin/sh -c 'printf x >> %s'", count),
			n: 1, respawn: true, churn: true, flapAttempts: v.attempts, flapWindow: v.window})
		if err != nil {
			fatal(err)
		}
		time.Sleep(2 * time.Second)
		res := churnResult{label: v.label, kind: v.kind}
		select {
		case <-d.exited:
			b, _ := os.ReadFile(filepath.Join(d.dir, "daemon.stderr"))
			r.note("crash churn %s: the daemon exited at start (%v): %.300s", v.label, d.exitErr, strings.TrimSpace(string(b)))
			res.dead = true
			d.stop()
			os.RemoveAll(dir)
			r.churn = append(r.churn, res)
			continue
		default:
		}
		rss, _ := rssThreads(d.pid)
		res.rssBefore = float64(rss) / 1024
		c0 := cpuTicks(d.pid)
		n0 := fileSize(count)
		t0 := time.Now()
		for time.Since(t0) < v.dur {
			time.Sleep(time.Second)
			if res.rssMid == 0 && time.Since(t0) >= v.dur/2 {
				rss, _ := rssThreads(d.pid)
				res.rssMid = float64(rss) / 1024
			}
			if rss, _ := rssThreads(d.pid); float64(rss)/1024 > res.rssMax {
				res.rssMax = float64(rss) / 1024
			}
		}
		res.seconds = time.Since(t0).Seconds()
		select {
		case <-d.exited:
			b, _ := os.ReadFile(filepath.Join(d.dir, "daemon.stderr"))
			r.note("crash churn %s: the daemon exited during the run (%v): %.300s", v.label, d.exitErr, strings.TrimSpace(string(b)))
			res.dead = true
		default:
		}
		res.starts = fileSize(count) - n0
		res.cpuTicks = cpuTicks(d.pid) - c0
		rss, _ = rssThreads(d.pid)
		res.rssAfter = float64(rss) / 1024
		if v.kind != kindSupervisord {
			out, _ := exec.Command(circlectlBin, "--socket", d.sock, "status").CombinedOutput()
			res.statusNote = strings.TrimSpace(string(out))
		}
		d.stop()
		os.RemoveAll(dir)
		r.churn = append(r.churn, res)
	}
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// prewarm touches and frees n bytes of anonymous memory just before a
// run, so the page cache the run fills comes from pages the hypervisor
// backs now. On a VM with free page reporting (virtio-balloon), pages
// freed by the previous run are handed back to the host after a few
// seconds, and the first write to each costs a host fault: whichever
// setup runs on such pages looks slow for reasons outside it.
func prewarm(n int64) {
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	syscall.Munmap(b)
}
