package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// The same supervisord.conf runs under Debian's supervisord and under
// circled (issue 18, "Done when"): the same processes start (names and
// counts), priority levels start in supervisord's order (lower first) and
// stop in the reverse order. Each program appends "start NAME PID" when it
// starts and "stop NAME" when it gets SIGTERM.
func TestSupervisordSameAsCircled(t *testing.T) {
	sd := supervisordPath(t)
	dir, err := os.MkdirTemp("", "svc") // short: a unix socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"conf.d", "logs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prog := func(name, label, extra string) string {
		// The shell sets its trap, then records its pid (the process's),
		// waits for SIGTERM, records the stop and exits 0. (Trap first: the
		// test stops everything as soon as every start is recorded.)
		return "[program:" + name + "]\n" +
			`command=/bin/sh -c 'trap "echo \"stop ` + label + `\" >> ` + dir + `/events.log; kill \$!; exit 0" TERM; echo "start ` + label + ` $$" >> ` + dir + `/events.log; sleep 1000 & wait'` + "\n" +
			"stdout_logfile=NONE\nstderr_logfile=NONE\nstopwaitsecs=5\n" + extra + "\n"
	}
	conf := "[unix_http_server]\nfile=" + dir + "/s.sock\n\n" +
		"[supervisord]\nnodaemon=true\nlogfile=" + dir + "/supervisord.log\npidfile=" + dir + "/supervisord.pid\nchildlogdir=" + dir + "/logs\n\n" +
		"[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n" +
		"[supervisorctl]\nserverurl=unix://" + dir + "/s.sock\n\n" +
		"[include]\nfiles = conf.d/*.conf\n\n" +
		prog("first", "first", "priority=1") +
		prog("web", "web_%(process_num)d", "priority=50\nnumprocs=2\nnumprocs_start=1\nprocess_name=%(program_name)s_%(process_num)d") +
		"[group:workers]\nprograms=fast,slow\npriority=100\n\n" +
		prog("fast", "fast", "") + prog("slow", "slow", "") +
		prog("never", "never", "autostart=false")
	if err := os.WriteFile(filepath.Join(dir, "supervisord.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "last.conf"), []byte(prog("last", "last", "priority=900")), 0o644); err != nil {
		t.Fatal(err)
	}
	levels := map[string]int{"first": 1, "web_1": 50, "web_2": 50, "fast": 100, "slow": 100, "last": 900}
	wantStarted := []string{"fast", "first", "last", "slow", "web_1", "web_2"}

	run := func(name string, argv ...string) ([]string, []string) {
		t.Helper()
		events := filepath.Join(dir, "events.log")
		os.Remove(events)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		var started []string
		ok, _ := testhelper.Wait(20*time.Second, func() (bool, string) {
			started = eventNames(t, events, "start")
			return len(started) >= len(wantStarted), ""
		})
		if !ok {
			t.Fatalf("%s: started %v, want %v\n%s", name, started, wantStarted, out.String())
		}
		starts := eventLines(t, events, "start")
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited: %v\n%s", name, err, out.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop\n%s", name, out.String())
		}
		return starts, eventNames(t, events, "stop")
	}

	for _, c := range []struct {
		name string
		argv []string
	}{
		{"supervisord", []string{sd, "-n", "-c", filepath.Join(dir, "supervisord.conf")}},
		{"circled", []string{filepath.Join(binDir, "circled"), "-c", filepath.Join(dir, "supervisord.conf")}},
	} {
		starts, stops := run(c.name, c.argv...)
		// Same processes: names and counts.
		var names []string
		type started struct {
			name string
			pid  int
		}
		var byPid []started
		for _, l := range starts {
			f := strings.Fields(l)
			pid, _ := strconv.Atoi(f[2])
			names = append(names, f[1])
			byPid = append(byPid, started{f[1], pid})
		}
		sort.Strings(names)
		if !slices.Equal(names, wantStarted) {
			t.Errorf("%s started %v, want %v", c.name, names, wantStarted)
		}
		// Start order: pids grow with the order of the forks; a lower
		// supervisord priority starts first.
		sort.Slice(byPid, func(i, j int) bool { return byPid[i].pid < byPid[j].pid })
		for i := 1; i < len(byPid); i++ {
			if levels[byPid[i].name] < levels[byPid[i-1].name] {
				t.Errorf("%s started %s (priority %d) after %s (priority %d): %v", c.name,
					byPid[i].name, levels[byPid[i].name], byPid[i-1].name, levels[byPid[i-1].name], byPid)
			}
		}
		// Stop order: the reverse.
		stopped := slices.Clone(stops)
		sort.Strings(stopped)
		if !slices.Equal(stopped, wantStarted) {
			t.Errorf("%s stopped %v, want %v", c.name, stops, wantStarted)
		}
		for i := 1; i < len(stops); i++ {
			if levels[stops[i]] > levels[stops[i-1]] {
				t.Errorf("%s stopped %s (priority %d) after %s (priority %d): %v", c.name,
					stops[i], levels[stops[i]], stops[i-1], levels[stops[i-1]], stops)
			}
		}
		t.Logf("%s: start %v, stop %v", c.name, byPid, stops)
	}
}

// supervisordPath finds Debian's supervisord, installing the package with
// packaging/test-deps-supervisor.sh when it is missing; it skips (saying
// why) when that cannot be done.
func supervisordPath(t *testing.T) string {
	if p, err := exec.LookPath("supervisord"); err == nil {
		return p
	}
	out, err := exec.Command("bash", filepath.Join("..", "..", "packaging", "test-deps-supervisor.sh")).CombinedOutput()
	if err != nil {
		t.Skipf("supervisord is missing and test-deps-supervisor.sh could not install it: %v: %s", err, out)
	}
	p, err := exec.LookPath("supervisord")
	if err != nil {
		t.Skipf("supervisord still missing after test-deps-supervisor.sh: %s", out)
	}
	return p
}

// eventLines are the lines of the events log that start with kind.
func eventLines(t *testing.T, path, kind string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, kind+" ") && len(strings.Fields(l)) >= 2 {
			out = append(out, l)
		}
	}
	return out
}

func eventNames(t *testing.T, path, kind string) []string {
	var out []string
	for _, l := range eventLines(t, path, kind) {
		out = append(out, strings.Fields(l)[1])
	}
	return out
}

// Restart behaviour of supervisord's autorestart, exitcodes, startsecs and
// startretries, as the config maps them (issue 18 "Done when"), the same
// under Debian's supervisord and under circled (states read with
// supervisorctl from each): a program that exits 0 with autorestart =
// unexpected stays EXITED; one that exits 3 (not in exitcodes) is
// restarted; one that keeps exiting before startsecs becomes FATAL after
// startretries more tries (startretries + 1 starts, no more).
func TestSupervisordRestartBehaviour(t *testing.T) {
	sd := supervisordPath(t)
	ctlPath, err := exec.LookPath("supervisorctl")
	if err != nil {
		t.Skip("SKIP: supervisorctl missing (Debian package supervisor)")
	}
	dir, err := os.MkdirTemp("", "svr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ev := dir + "/events.log"
	conf := "[unix_http_server]\nfile=" + dir + "/s.sock\n\n" +
		"[supervisord]\nnodaemon=true\nlogfile=" + dir + "/supervisord.log\npidfile=" + dir + "/supervisord.pid\nchildlogdir=" + dir + "\n\n" +
		"[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n" +
		"[supervisorctl]\nserverurl=unix://" + dir + "/s.sock\n\n" +
		// Exits 0 once, then (if restarted) says so and sleeps.
		"[program:once]\ncommand=/bin/sh -c 'if [ -e " + dir + "/once.flag ]; then echo restart once >> " + ev + "; exec sleep 1000; fi; touch " + dir + "/once.flag; echo start once >> " + ev + "; exit 0'\n" +
		"autorestart=unexpected\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n\n" +
		// Exits 3 once, then runs.
		"[program:unexpected]\ncommand=/bin/sh -c 'if [ -e " + dir + "/unexp.flag ]; then echo restart unexpected >> " + ev + "; exec sleep 1000; fi; touch " + dir + "/unexp.flag; echo start unexpected >> " + ev + "; exit 3'\n" +
		"autorestart=unexpected\nexitcodes=0\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n\n" +
		// Always fails before startsecs.
		"[program:crashloop]\ncommand=/bin/sh -c 'echo start crashloop >> " + ev + "; exit 1'\n" +
		"startsecs=5\nstartretries=1\nautorestart=true\nstdout_logfile=NONE\nstderr_logfile=NONE\n"
	cf := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(name string, argv ...string) {
		for _, f := range []string{ev, dir + "/once.flag", dir + "/unexp.flag"} {
			os.Remove(f)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out testhelper.SyncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop on SIGTERM\n%s", name, out.String())
			}
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}()
		state := func(prog string) string {
			b, _ := exec.Command(ctlPath, "-c", cf, "status", prog).CombinedOutput()
			if f := strings.Fields(string(b)); len(f) >= 2 && f[0] == prog {
				return f[1]
			}
			return string(b)
		}
		// FATAL comes after a 1 s backoff (under supervisord): by then the
		// other two programs' fate is decided. (startsecs is 5 s so that a
		// slow start on a loaded machine still ends before it.)
		if ok, last := testhelper.Wait(30*time.Second, func() (bool, string) { s := state("crashloop"); return s == "FATAL", s }); !ok {
			t.Fatalf("%s: crashloop never FATAL (last %s)\n%s", name, last, out.String())
		}
		if ok, last := testhelper.Wait(10*time.Second, func() (bool, string) { s := state("unexpected"); return s == "RUNNING", s }); !ok {
			t.Fatalf("%s: unexpected never RUNNING again (last %s)", name, last)
		}
		// A program that exited on its own and was left down is EXITED
		// (not STOPPED, as after a stop) under both; it is never
		// restarted (counted below).
		if s := state("once"); s != "EXITED" {
			t.Errorf("%s: once is %s, want EXITED", name, s)
		}
		// FATAL is final: no start follows it.
		if s := state("crashloop"); s != "FATAL" {
			t.Errorf("%s: crashloop left FATAL: %s", name, s)
		}
		events := eventLines(t, ev, "start")
		events = append(events, eventLines(t, ev, "restart")...)
		count := map[string]int{}
		for _, l := range events {
			count[l]++
		}
		// startretries=1: the first start and one more.
		want := map[string]int{"start once": 1, "start unexpected": 1, "restart unexpected": 1, "start crashloop": 2}
		for k, n := range want {
			if count[k] != n {
				t.Errorf("%s: %q %d times, want %d (events %v)", name, k, count[k], n, count)
			}
		}
		if count["restart once"] != 0 {
			t.Errorf("%s restarted once: %v", name, count)
		}
	}
	run("supervisord", sd, "-n", "-c", cf)
	run("circled", filepath.Join(binDir, "circled"), "-c", cf)
}
