//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A daemon under test: circled or supervisord, started by the harness in
// the foreground so the harness is its parent and can wait() for it.
type daemon struct {
	kind    string // kindCircled or kindSupervisord
	dir     string
	conf    string
	sock    string
	cmd     *exec.Cmd
	pid     int
	started time.Time
	exited  chan struct{}
	exitAt  time.Time
	exitErr error
}

const (
	kindCircled     = "circled"
	kindAlt         = "circled-alt"
	kindSupervisord = "supervisord"
)

// program is what one watcher / [program] runs, in a form both daemons
// can be configured with.
type program struct {
	name    string
	command string // shell-like command line, no quotes inside except in shCmd
	n       int
	// restart policy
	churn        bool   // child exits at once: restart continuously
	flapAttempts int    // circled flapping.attempts (churn)
	flapWindow   string // circled flapping.window (churn)
	respawn      bool
	// log capture to a rotated file (empty: discard output)
	logFile     string
	logMaxBytes string // "64MB"
	logBackups  int
	extra       string // more watcher keys, circled only ("key = value\n" lines)
}

func circledConf(dir string, progs ...program) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[circled]\nsocket = %s\npidfile = %s\nloglevel = warn\ngraceful_timeout = 10\nwatch_config = false\ninclude =\n\n",
		filepath.Join(dir, "c.sock"), filepath.Join(dir, "c.pid"))
	for _, p := range progs {
		fmt.Fprintf(&b, "[watcher:%s]\ncmd = %s\nnumprocesses = %d\ngraceful_timeout = 10\nrespawn = %v\n", p.name, p.command, p.n, p.respawn)
		b.WriteString(p.extra)
		if p.churn {
			fmt.Fprintf(&b, "min_uptime = 0\nflapping.attempts = %d\nflapping.window = %s\n", p.flapAttempts, p.flapWindow)
		}
		if p.logFile != "" {
			fmt.Fprintf(&b, "stdout_stream.class = FileStream\nstdout_stream.filename = %s\nstdout_stream.max_bytes = %s\nstdout_stream.backup_count = %d\nstderr_stream.class = null\n",
				p.logFile, p.logMaxBytes, p.logBackups)
		} else {
			b.WriteString("stdout_stream.class = null\nstderr_stream.class = null\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func supervisordConf(dir string, progs ...program) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[unix_http_server]
file=%[1]s/s.sock
chmod=0700

[supervisord]
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s
nodaemon=true
loglevel=warn
user=root
minfds=1024
minprocs=200

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[1]s/s.sock

`, dir)
	for _, p := range progs {
		fmt.Fprintf(&b, "[program:%s]\ncommand=%s\nnumprocs=%d\nprocess_name=%%(program_name)s_%%(process_num)d\n"+
			"startsecs=0\nautorestart=%v\nstopwaitsecs=10\nstopasgroup=true\nkillasgroup=true\n",
			p.name, p.command, p.n, p.respawn)
		if p.churn {
			b.WriteString("startretries=1000000000\n")
		}
		if p.logFile != "" {
			fmt.Fprintf(&b, "stdout_logfile=%s\nstdout_logfile_maxbytes=%s\nstdout_logfile_backups=%d\nstderr_logfile=NONE\n",
				p.logFile, p.logMaxBytes, p.logBackups)
		} else {
			b.WriteString("stdout_logfile=NONE\nstderr_logfile=NONE\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// start writes the config of kind into a fresh directory under root and
// starts the daemon in the foreground.
func start(kind, root string, progs ...program) (*daemon, error) {
	dir, err := os.MkdirTemp(root, kind[:1])
	if err != nil {
		return nil, err
	}
	d := &daemon{kind: kind, dir: dir, exited: make(chan struct{})}
	var args []string
	var bin string
	switch kind {
	case kindCircled, kindAlt:
		d.conf = filepath.Join(dir, "circled.ini")
		d.sock = filepath.Join(dir, "c.sock")
		err = os.WriteFile(d.conf, []byte(circledConf(dir, progs...)), 0o644)
		bin, args = circledBin, []string{"-c", d.conf}
		if kind == kindAlt {
			bin = altBin
		}
	case kindSupervisord:
		d.conf = filepath.Join(dir, "supervisord.conf")
		d.sock = filepath.Join(dir, "s.sock")
		err = os.WriteFile(d.conf, []byte(supervisordConf(dir, progs...)), 0o644)
		bin, args = supervisordBin, []string{"-n", "-c", d.conf}
	}
	if err != nil {
		return nil, err
	}
	return d, d.launch(bin, args...)
}

// launch starts the daemon's program in its directory, in a process
// group of its own, output to daemon.stderr, and watches for its exit.
func (d *daemon) launch(bin string, args ...string) error {
	logf, err := os.Create(filepath.Join(d.dir, "daemon.stderr"))
	if err != nil {
		return err
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Dir = d.dir
	d.cmd.Stdout = logf
	d.cmd.Stderr = logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	d.pid = d.cmd.Process.Pid
	live[d] = true
	go func() {
		d.exitErr = d.cmd.Wait()
		d.exitAt = time.Now()
		logf.Close()
		close(d.exited)
	}()
	return nil
}

// waitRunning polls /proc until the daemon has n children that have
// exec'd comm, and returns their pids. Running means exec done: before
// exec a forked child still shows the daemon's comm.
func (d *daemon) waitRunning(n int, want string, timeout time.Duration) ([]int, error) {
	deadline := time.Now().Add(timeout)
	ok := map[int]bool{}
	// Each read of the children files is O(children) per daemon thread:
	// poll less often for big n so the harness does not steal a core
	// from the daemon (resolution: 1 ms at 10, 2 ms at 200, 10 ms at 2000).
	every := time.Millisecond
	switch {
	case n >= 1000:
		every = 10 * time.Millisecond
	case n >= 100:
		every = 2 * time.Millisecond
	}
	for {
		kids := children(d.pid)
		if len(kids) >= n {
			all := 0
			for _, k := range kids {
				if ok[k] {
					all++
					continue
				}
				if comm(k) == want {
					ok[k] = true
					all++
				}
			}
			if all >= n {
				return kids, nil
			}
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("%s exited: %v (see %s/daemon.stderr)", d.kind, d.exitErr, d.dir)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: %d of %d children running after %v", d.kind, len(ok), n, timeout)
		}
		time.Sleep(every)
	}
}

// terminate sends SIGTERM and returns the time until the daemon exited and
// until every pid in kids is gone, reaping the orphans the harness
// inherits as subreaper.
func (d *daemon) terminate(kids []int, timeout time.Duration) (exit, allGone time.Duration, left int) {
	t0 := time.Now()
	syscall.Kill(d.pid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(timeout):
		syscall.Kill(-d.pid, syscall.SIGKILL)
		<-d.exited
	}
	exit = d.exitAt.Sub(t0)
	deadline := time.Now().Add(timeout)
	for {
		left = 0
		for _, k := range kids {
			if !gone(k) {
				left++
			}
		}
		if left == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	allGone = time.Since(t0)
	d.cleanup(kids)
	return exit, allGone, left
}

// cleanup kills whatever is left of the daemon and its children and reaps
// the orphans re-parented to the harness.
func (d *daemon) cleanup(kids []int) {
	select {
	case <-d.exited:
	default:
		syscall.Kill(-d.pid, syscall.SIGKILL)
		syscall.Kill(d.pid, syscall.SIGKILL)
		<-d.exited
	}
	for _, k := range kids {
		if !gone(k) {
			syscall.Kill(-k, syscall.SIGKILL)
			syscall.Kill(k, syscall.SIGKILL)
		}
	}
	reapOrphans()
	delete(live, d)
}

func (d *daemon) stop() {
	kids := children(d.pid)
	d.terminate(kids, 30*time.Second)
}

// live is every daemon started and not yet cleaned up, killed on exit.
var live = map[*daemon]bool{}

func killAll() {
	for d := range live {
		d.cleanup(children(d.pid))
	}
}

// reapOrphans reaps zombie children of the harness that are not daemons
// it waits for itself (orphans re-parented to it as subreaper).
func reapOrphans() {
	mine := map[int]bool{}
	for d := range live {
		mine[d.pid] = true
	}
	for _, k := range children(os.Getpid()) {
		if mine[k] || procState(k) != 'Z' {
			continue
		}
		var ws syscall.WaitStatus
		syscall.Wait4(k, &ws, syscall.WNOHANG, nil)
	}
}
