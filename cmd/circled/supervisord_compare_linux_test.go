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
		// The shell records its pid (the process's), waits for SIGTERM,
		// records the stop and exits 0.
		return "[program:" + name + "]\n" +
			`command=/bin/sh -c 'echo "start ` + label + ` $$" >> ` + dir + `/events.log; trap "echo \"stop ` + label + `\" >> ` + dir + `/events.log; kill \$!; exit 0" TERM; sleep 1000 & wait'` + "\n" +
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
		ok, _ := poll(20*time.Second, func() (bool, string) {
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
