//go:build linux

// Command bench runs circled and Debian's supervisord side by side on the
// same children and writes BENCHMARKS.md. `make bench` (bench/run.sh)
// builds and runs it; see BENCHMARKS.md for what each scenario measures.
//
//	bench [-out BENCHMARKS.md] [-gobench FILE] [-quick]
//	bench gen BYTES STAMPFILE   (the log generator: BYTES of 100-byte lines on stdout)
//	bench flood GAPFILE         (the upgrade scenario's flood: timestamped lines, stalls to GAPFILE)
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	circledBin     string
	altBin         string // -alt: setup kindAlt runs this circled
	altVersion     string // `altBin --version`, first line
	altLabel       string // its short name in the tables ("circled dev")
	circlectlBin   string
	supervisordBin string
	supervisorctl  string
	selfBin        string
	haveSup        bool
	nofile         uint64
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "gen" {
		gen(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "flood" {
		flood(os.Args[2:])
		return
	}
	out := flag.String("out", "BENCHMARKS.md", "report to write")
	gobench := flag.String("gobench", "", "file with `go test -bench` output to include")
	bindir := flag.String("bin", "bin", "directory of circled and circlectl")
	workdir := flag.String("dir", "", "scratch directory on the disk to test (default: a temp dir under /var/tmp)")
	quick := flag.Bool("quick", false, "fewer repetitions and shorter waits (a smoke run, not for the report)")
	noSup := flag.Bool("no-supervisord", false, "skip supervisord")
	command := flag.String("command", "make bench", "command recorded in the report")
	alt := flag.String("alt", "", "a second circled binary, run as setup \"circled-alt\" beside circled in every circled scenario (A/B of a change)")
	logMiB := flag.Int("logmib", 0, "log capture size in MiB (0: the plan's)")
	logReps := flag.Int("logreps", 0, "log capture repetitions (0: the plan's)")
	only := flag.String("only", "", "run only these scenarios, comma-separated: sizes, logs, churn, http, sockets, upgrade (a focused run, not for the report)")
	sizes := flag.String("sizes", "", "numbers of children of the sizes scenarios, comma-separated (default: the plan's 10,200,2000)")
	launchReps := flag.Int("launchreps", 0, "launch/RSS/SIGTERM repetitions per size (0: the plan's)")
	launchOnly := flag.Bool("launchonly", false, "sizes: only launch, RSS/threads and SIGTERM (no idle, status, restart, metrics)")
	flag.Parse()

	var err error
	if circledBin, err = filepath.Abs(filepath.Join(*bindir, "circled")); err != nil {
		fatal(err)
	}
	circlectlBin, _ = filepath.Abs(filepath.Join(*bindir, "circlectl"))
	if selfBin, err = os.Executable(); err != nil {
		fatal(err)
	}
	if p, err := exec.LookPath("supervisord"); err == nil && !*noSup {
		supervisordBin = p
		supervisorctl, _ = exec.LookPath("supervisorctl")
		haveSup = supervisorctl != ""
	}
	if !haveSup {
		logf("supervisord not found: the comparison is skipped (circled only)")
	}

	// 2000 children need more than 1024 fds (pipes) in the daemons;
	// setting the limit here makes the Go runtime leave it as is for
	// children.
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logf("cannot raise RLIMIT_NOFILE to %d: %v", lim.Max, err)
	}
	nofile = lim.Cur
	// Orphans of a daemon that exits re-parent to us, not to PID 1 (which
	// may not reap in a container), so a dead child is seen as gone.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		logf("PR_SET_CHILD_SUBREAPER: %v", err)
	}

	root := *workdir
	if root == "" {
		if root, err = os.MkdirTemp("/var/tmp", "circle-bench"); err != nil {
			fatal(err)
		}
	}
	defer os.RemoveAll(root)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		logf("interrupted: killing the daemons")
		killAll()
		os.RemoveAll(root)
		os.Exit(130)
	}()
	defer killAll()

	cfg := defaultPlan
	if *quick {
		cfg = quickPlan
	}
	if *alt != "" {
		if altBin, err = filepath.Abs(*alt); err != nil {
			fatal(err)
		}
		out, err := exec.Command(altBin, "--version").Output()
		if err != nil {
			fatal(fmt.Errorf("%s --version: %v", altBin, err))
		}
		altVersion = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		altLabel = altVersion
		if i := strings.Index(altLabel, " ("); i > 0 {
			altLabel = altLabel[:i]
		}
		altLabel = "alt: " + altLabel
	}
	if *logMiB > 0 {
		cfg.logBytes = int64(*logMiB) << 20
	}
	if *logReps > 0 {
		cfg.logReps = *logReps
	}
	if *sizes != "" {
		cfg.sizes = nil
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fatal(fmt.Errorf("-sizes: bad number %q", f))
			}
			cfg.sizes = append(cfg.sizes, n)
		}
	}
	if *launchReps > 0 {
		cfg.launchReps = map[int]int{}
		for _, n := range cfg.sizes {
			cfg.launchReps[n] = *launchReps
		}
	}
	cfg.launchOnly = *launchOnly
	t0 := time.Now()
	r := &report{plan: cfg, started: t0, command: *command, haveSup: haveSup, logs: map[string][]logResult{}}
	r.machine = describeMachine()
	want := func(s string) bool { return *only == "" || strings.Contains(","+*only+",", ","+s+",") }
	// Log capture runs first: after the 2000-children scenarios of both
	// daemons, circled's capture ran at half speed in two full runs (all
	// of the time inside write(2) to the page cache) while cat and
	// supervisord did not; see bench/ANALYSIS.md.
	if want("logs") {
		runLogs(r, root)
	}
	if want("sizes") {
		for _, n := range cfg.sizes {
			runSize(r, root, n)
		}
	}
	if want("churn") {
		runChurn(r, root)
	}
	if want("http") {
		runHTTP(r, root, cfg.httpReps)
	}
	if want("sockets") {
		runSockets(r, root, cfg.sockReps)
	}
	if want("upgrade") {
		runUpgrade(r, root, cfg.upgradeReps)
	}
	r.elapsed = time.Since(t0)
	if *gobench != "" {
		if b, err := os.ReadFile(*gobench); err == nil {
			r.gobench = string(b)
		}
	}
	if err := os.WriteFile(*out, []byte(r.markdown()), 0o644); err != nil {
		fatal(err)
	}
	logf("wrote %s (harness %v)", *out, r.elapsed.Round(time.Second))
}

func fatal(err error) {
	logf("fatal: %v", err)
	killAll()
	os.Exit(1)
}

// plan is how many repetitions each scenario gets.
type plan struct {
	sizes       []int
	launchReps  map[int]int // launch / RSS / SIGTERM cycles per daemon
	ctlReps     map[int]int
	restartReps map[int]int
	idle        time.Duration
	logBytes    int64
	logReps     int
	churn       time.Duration
	httpReps    int
	sockReps    int         // scenario 11: runs per setup
	metricsReps map[int]int // GET /metrics per circled daemon
	upgradeReps int         // scenario 12: live upgrades per size and setup
	launchOnly  bool        // sizes: scenarios 1, 2, 6 only
}

var defaultPlan = plan{
	sizes:       []int{10, 200, 2000},
	launchReps:  map[int]int{10: 7, 200: 7, 2000: 3},
	ctlReps:     map[int]int{10: 20, 200: 20, 2000: 20},
	restartReps: map[int]int{10: 20, 200: 20, 2000: 20},
	idle:        30 * time.Second,
	logBytes:    512 << 20,
	logReps:     5,
	churn:       60 * time.Second,
	httpReps:    3,
	sockReps:    3,
	metricsReps: map[int]int{200: 20, 2000: 20},
	upgradeReps: 5,
}

var quickPlan = plan{
	sizes:       []int{10, 200, 2000},
	launchReps:  map[int]int{10: 2, 200: 2, 2000: 1},
	ctlReps:     map[int]int{10: 3, 200: 3, 2000: 3},
	restartReps: map[int]int{10: 3, 200: 3, 2000: 3},
	idle:        3 * time.Second,
	logBytes:    64 << 20,
	logReps:     1,
	churn:       5 * time.Second,
	httpReps:    1,
	sockReps:    1,
	metricsReps: map[int]int{200: 3, 2000: 3},
	upgradeReps: 1,
}

// kinds is the daemons to compare, circled first, then the -alt circled
// when given, then supervisord (A B C A B C ...).
func kinds() []string {
	ks := []string{kindCircled}
	if altBin != "" {
		ks = append(ks, kindAlt)
	}
	if haveSup {
		ks = append(ks, kindSupervisord)
	}
	return ks
}

func sleepProg(n int) program {
	return program{name: "sleep", command: "sleep 100000", n: n, respawn: true}
}

// runSize runs scenarios 1-6 with n sleep children.
func runSize(r *report, root string, n int) {
	p := r.plan
	// 1, 2, 6: launch → all running, RSS/threads, SIGTERM → exit; a fresh
	// daemon per repetition, interleaved.
	for rep := 0; rep < p.launchReps[n]; rep++ {
		for _, k := range kinds() {
			logf("n=%d launch/rss/sigterm %s rep %d/%d", n, k, rep+1, p.launchReps[n])
			d, err := start(k, root, sleepProg(n))
			if err != nil {
				fatal(err)
			}
			kids, err := d.waitRunning(n, "sleep", 120*time.Second)
			if err != nil {
				fatal(err)
			}
			r.add("launch", k, n, float64(time.Since(d.started).Microseconds())/1000)
			time.Sleep(time.Second) // settle before memory is read
			rss, thr := rssThreads(d.pid)
			r.add("rss", k, n, float64(rss)/1024)
			r.add("threads", k, n, float64(thr))
			exit, allGone, left := d.terminate(kids, 60*time.Second)
			r.add("sigterm", k, n, float64(exit.Microseconds())/1000)
			r.add("sigterm_gone", k, n, float64(allGone.Microseconds())/1000)
			if left > 0 {
				r.note("n=%d %s: %d children still alive %v after SIGTERM", n, k, left, allGone)
			}
			os.RemoveAll(d.dir)
			time.Sleep(300 * time.Millisecond)
		}
	}

	if p.launchOnly {
		return
	}
	// 3, 4, 5 on long-running daemons, both up at once.
	ds := map[string]*daemon{}
	kids := map[string][]int{}
	for _, k := range kinds() {
		d, err := start(k, root, sleepProg(n))
		if err != nil {
			fatal(err)
		}
		if kids[k], err = d.waitRunning(n, "sleep", 120*time.Second); err != nil {
			fatal(err)
		}
		ds[k] = d
	}
	// Let startup settle (the Go runtime's background scavenger returns
	// startup memory during the first seconds).
	time.Sleep(5 * time.Second)
	// 5: idle CPU, both daemons measured over the same window.
	logf("n=%d idle CPU over %v", n, p.idle)
	before := map[string]int64{}
	for k, d := range ds {
		before[k] = cpuTicks(d.pid)
	}
	time.Sleep(p.idle)
	for k, d := range ds {
		r.add("idle", k, n, float64(cpuTicks(d.pid)-before[k]))
	}
	// 3: ctl round trip.
	logf("n=%d ctl status x%d", n, p.ctlReps[n])
	for i := 0; i < p.ctlReps[n]; i++ {
		for _, k := range kinds() {
			var c *exec.Cmd
			if k != kindSupervisord {
				c = exec.Command(circlectlBin, "--socket", ds[k].sock, "status")
			} else {
				c = exec.Command(supervisorctl, "-c", ds[k].conf, "status")
			}
			t0 := time.Now()
			outb, err := c.Output()
			el := time.Since(t0)
			if err != nil {
				r.note("n=%d %s status: %v: %.200s", n, k, err, outb)
			}
			r.add("ctl", k, n, float64(el.Microseconds())/1000)
		}
	}
	// 4: restart latency, a different child each time.
	logf("n=%d restart after kill -9 x%d", n, p.restartReps[n])
	killed := map[int]bool{}
	for i := 0; i < p.restartReps[n]; i++ {
		for _, k := range kinds() {
			ms, err := restartOnce(ds[k], killed)
			if err != nil {
				r.note("n=%d %s restart: %v", n, k, err)
				continue
			}
			r.add("restart", k, n, ms)
			time.Sleep(100 * time.Millisecond)
		}
	}
	// 10: GET /metrics (issue 17) on the circled daemons.
	if reps := p.metricsReps[n]; reps > 0 {
		for _, k := range kinds() {
			if k == kindSupervisord {
				continue
			}
			logf("n=%d %s GET /metrics x%d", n, k, reps)
			m := scrapeMetrics(ds[k], n, reps)
			if m.na != "" {
				logf("n=%d %s: %s", n, k, m.na)
			}
			r.metrics = append(r.metrics, m)
		}
	}
	for _, d := range ds {
		d.stop()
		os.RemoveAll(d.dir)
	}
}

// restartOnce kill -9s one child never killed before and returns the ms
// until a new child of the daemon has exec'd sleep, watching /proc.
//
// Reading /proc/DAEMON/task/*/children costs O(children) per thread, which
// at 2000 children and a busy poll would itself steal a core and inflate
// the measure. So after the kill the harness polls the tiny
// /proc/sys/kernel/ns_last_pid: every newly allocated pid is checked once
// (its /proc/PID/stat parent), and a new child of the daemon is then
// watched until its comm is sleep.
func restartOnce(d *daemon, killed map[int]bool) (float64, error) {
	// The victim is the oldest child never killed: kills rotate over the
	// slots, so no slot dies 5 times in 10 s (circled's default flapping
	// policy would rightly stop the watcher for 30 s).
	victim, oldest := 0, int64(-1)
	for _, k := range children(d.pid) {
		if killed[k] || comm(k) != "sleep" {
			continue
		}
		if st := startTime(k); oldest < 0 || st < oldest {
			victim, oldest = k, st
		}
	}
	if victim == 0 {
		return 0, fmt.Errorf("no child left to kill")
	}
	killed[victim] = true
	last := lastPID()
	t0 := time.Now()
	syscall.Kill(victim, syscall.SIGKILL)
	deadline := t0.Add(30 * time.Second)
	newKid := 0
	// A pid shows in ns_last_pid (alloc_pid) a moment before its
	// /proc entry exists: keep such pids pending until they can be read.
	pending := map[int]time.Time{}
	for {
		if newKid == 0 {
			if cur := lastPID(); cur != last {
				for _, p := range pidRange(last, cur) {
					pending[p] = time.Now()
				}
				last = cur
			}
			for p, seen := range pending {
				switch pp := ppid(p); {
				case pp == d.pid:
					newKid = p
				case pp != 0 || time.Since(seen) > 100*time.Millisecond:
					delete(pending, p)
				}
				if newKid != 0 {
					break
				}
			}
		}
		if newKid != 0 && comm(newKid) == "sleep" {
			return float64(time.Since(t0).Microseconds()) / 1000, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no replacement for %d after 30s", victim)
		}
		if time.Since(t0) < 50*time.Millisecond {
			time.Sleep(100 * time.Microsecond)
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// gen writes exactly BYTES bytes of 100-byte lines to stdout in 64 KiB
// writes, after writing its start time (unix ns) to STAMPFILE.
func gen(args []string) {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bench gen BYTES STAMPFILE")
		os.Exit(2)
	}
	total, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := os.WriteFile(args[1], []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	const lineLen, perBlock = 100, 655 // 65500 bytes per write
	block := make([]byte, 0, lineLen*perBlock)
	for i := 0; i < perBlock; i++ {
		line := fmt.Appendf(nil, "%06d ", i)
		for len(line) < lineLen-1 {
			line = append(line, byte('a'+(len(line)+i)%26))
		}
		block = append(block, append(line, '\n')...)
	}
	for total > 0 {
		b := block
		if int64(len(b)) > total {
			b = b[:total]
			b[len(b)-1] = '\n'
		}
		n, err := os.Stdout.Write(b)
		if err != nil {
			os.Exit(1)
		}
		total -= int64(n)
	}
}
