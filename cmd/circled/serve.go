package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/internal/sdnotify"
	"github.com/circle-supervisor/circle/rpc2"
	"github.com/circle-supervisor/circle/supervisor"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
	"github.com/spf13/cobra"
)

// readyFDEnv names the fd on which a daemon started by --daemon reports
// "ok" or its startup error to the launcher.
const readyFDEnv = "CIRCLED_READY_FD"

// serve runs circled in the foreground until a stop signal or quit.
func serve(cmd *cobra.Command, f rootFlags) (retErr error) {
	// Taken out of the environment before anything copies it to children.
	notify := sdnotify.FromEnv(true)
	// A live upgrade: what the previous binary of this process handed
	// over (upgrade*.go), nil otherwise.
	upState, err := readUpgradeState()
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("live upgrade: %w", err)}
	}
	ready := readyReporter()
	defer func() {
		if retErr != nil {
			ready(retErr)
		}
	}()

	// Subscribe to SIGCHLD before anything can start a child.
	level := new(slog.LevelVar)
	var cfg *config.Config
	if upState != nil {
		// Never re-read during an upgrade: a config changed on disk is
		// applied by the next reload.
		cfg = upState.Config
	} else if cfg, err = config.Load(f.config, config.Options{Environ: os.Environ()}); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("invalid config:\n%w", err)}
	}
	logw := io.Writer(cmd.ErrOrStderr())
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	reopen := func() error { return nil }
	var lfw *logfileWriter
	if cfg.Daemon.Logfile != "" {
		// Rotated by logs.Rotating; watchers' StdoutStream output goes there too,
		// so nothing writes to a file that rotation renamed away.
		maxBytes, backups := cfg.Daemon.LogfileMaxBytes, cfg.Daemon.LogfileBackups
		if maxBytes == 0 {
			maxBytes = 100 << 20
		}
		if backups == 0 {
			backups = 5
		}
		// Opened without following a symbolic link, in a directory checked
		// once (logs.Rotating); failures are said on stderr.
		lj := logs.NewRotatingFile(logs.FileSpec{Path: cfg.Daemon.Logfile, MaxBytes: maxBytes, BackupCount: backups, Mode: cfg.Daemon.LogfileMode})
		if _, err := lj.Write(nil); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("logfile: %w", err)}
		}
		defer lj.Close()
		lfw = &logfileWriter{w: lj, path: lj.Path(), stderr: cmd.ErrOrStderr()}
		lw := &logs.LockedWriter{Mu: new(sync.Mutex), W: lfw}
		logw, stdout, stderr = lw, lw, lw
		reopen = lj.Close // the next write reopens the path
	}
	log := newLogger(logw, cfg.Daemon.LogFormat, level)
	if lfw != nil {
		lfw.recovered = func(n int64) {
			log.Warn("the logfile could not be written for a while; its lines were dropped", "bytes", n)
		}
	}
	for _, w := range cfg.Warnings {
		log.Warn("config", "warning", w.String())
	}
	if cfg.Daemon.Umask >= 0 {
		setUmask(cfg.Daemon.Umask)
	}
	// supervisord's minfds/minprocs: raised before any child starts.
	if err := raiseLimits(cfg.Supervisord.MinFDs, cfg.Supervisord.MinProcs, log); err != nil {
		return &exitError{code: 1, err: err}
	}

	reaper := supervisor.NewReaper(log)
	sigs := notifySignals()
	defer signal.Stop(sigs)

	socket := ctl.ResolveSocket(f.socket, cfg.Daemon.Socket)
	var ln net.Listener
	if upState != nil {
		// Handed over: connections queued in the kernel during the exec.
		ln, err = listenerFromFD(upState.Listener)
	} else {
		ln, err = ctl.Listen(socket, cfg.Daemon.SocketMode)
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	// supervisord's [inet_http_server]: rpc2 over TCP (read at startup
	// only; a reload does not move it).
	// TCP listeners a live upgrade handed over (same config, so the
	// same addresses); any not used here is closed below.
	var handed map[string]int
	if upState != nil {
		handed = handedListeners()
	}
	var inetLn net.Listener
	inetCfg := cfg.Supervisord.InetHTTP
	if inetCfg.Addr != "" {
		inetLn, err = checkedInetHTTP(inetCfg, func() (net.Listener, error) {
			return tcpListener(handed, "inet_http_server", func() (net.Listener, error) { return listenInetHTTP(inetCfg) })
		})
		if err != nil {
			ln.Close()
			return &exitError{code: 1, err: err}
		}
	}
	// [circled] metrics_listen: GET /metrics over TCP (read at startup).
	var metricsLn net.Listener
	if cfg.Daemon.MetricsListen != "" {
		// Its web configuration is checked for a handed-over listener too.
		if err = validateWebConfig(cfg.Daemon.MetricsWebConfig); err == nil {
			metricsLn, err = tcpListener(handed, "metrics_listen", func() (net.Listener, error) {
				return listenMetrics(cfg.Daemon.MetricsListen, cfg.Daemon.MetricsWebConfig)
			})
		}
		if err != nil {
			ln.Close()
			if inetLn != nil {
				inetLn.Close()
			}
			return &exitError{code: 1, err: err}
		}
		defer metricsLn.Close()
	}
	for name, fd := range handed {
		log.Warn("upgrade: a handed-over listener is not in the config", "listener", name)
		os.NewFile(uintptr(fd), name).Close()
	}
	pidfile := f.pidfile
	if pidfile == "" {
		pidfile = cfg.Daemon.Pidfile
	}
	if pidfile != "" {
		pf, err := writePidfile(pidfile, os.Getpid())
		if err != nil {
			ln.Close()
			if inetLn != nil {
				inetLn.Close()
			}
			return &exitError{code: 1, err: fmt.Errorf("pidfile: %w", err)}
		}
		defer func() {
			if err := pf.remove(); err != nil {
				log.Warn("pidfile", "err", err)
			}
		}()
	}

	sup := supervisor.New(cfg, supervisor.Options{
		Log: log, LogLevel: level, Spawner: reaper, Environ: os.Environ(),
		// The socket names circled's cgroup subtree and its state file, so
		// a circled restarted on the same config finds what a dead one
		// left running (crash recovery).
		Socket: socket,
		Stdout: stdout, Stderr: stderr, Reopen: reopen,
		OnReady:     func() { notify.Ready() },
		OnReloading: func() { notify.Reloading() },
		OnStopping:  func() { notify.Stopping() },
		Upgrade:     upState,
	})
	if f.logLevel != "" {
		level.Set(supervisor.ParseLevel(f.logLevel))
	}

	reaperCtx, stopReaper := context.WithCancel(context.Background())
	reaperDone := make(chan struct{})
	go func() { reaper.Run(reaperCtx); close(reaperDone) }()

	stopped := make(chan struct{})
	srvCtx, stopServer := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	mainLog := ""
	if lfw != nil {
		mainLog = lfw.path
	}
	// supervisord's XML-RPC API (rpc2) shares the control socket with ctl.
	rpc := rpc2.NewHandler(rpc2backend{sup: sup, mainLog: mainLog}, rpc2.Options{Logger: log})
	metrics := metricsHandler(sup, log)
	up := &upgrader{log: log, sup: sup, reaper: reaper, socket: socket, notifySocket: notify.Socket()}
	up.listener, _ = ln.(listenerFiler)
	up.tcp = map[string]listenerFiler{}
	if l, ok := inetLn.(listenerFiler); ok {
		up.tcp["inet_http_server"] = l
	}
	if l, ok := metricsLn.(listenerFiler); ok {
		up.tcp["metrics_listen"] = l
	}
	if upState != nil {
		up.upgrades = upState.Upgrades
		liveUpgrades.Store(int64(upState.Upgrades))
		if upState.StartPath != "" {
			startPath = upState.StartPath
		}
		log.Info("circled upgraded in place: every process adopted", "from", upState.From, "to", buildinfo.Version, "pid", os.Getpid(), "upgrades", upState.Upgrades,
			"since_exec", time.Since(upState.ExecAt).Round(time.Microsecond))
		sup.Publish(supervisor.Event{Type: supervisor.EventUpgrade, Reason: upState.From + " -> " + buildinfo.Version})
		// systemd (Type=notify): the main pid is the same; READY=1
		// follows from Run.
		notify.Notify("MAINPID=" + strconv.Itoa(os.Getpid()))
	}
	handler := metricsMux(metrics, rpc2Mux(rpc, ctl.NewHandler(backend{sup: sup, stopped: stopped, up: up}, log)))
	go func() { srvDone <- ctl.Serve(srvCtx, ln, handler) }()
	inetDone := make(chan struct{}, 1)
	if inetLn != nil {
		go func() {
			err := serveInetHTTP(srvCtx, inetLn, inetHandler(rpc, inetCfg, log), log)
			if err != nil {
				log.Error("inet_http_server stopped serving", "err", err)
			}
			inetDone <- struct{}{}
		}()
		log.Info("inet_http_server: supervisord's XML-RPC over TCP", "addr", inetLn.Addr().String(), "auth", inetCfg.Username != "")
	} else {
		inetDone <- struct{}{}
	}

	metricsDone := make(chan struct{})
	if metricsLn != nil {
		go func() {
			defer close(metricsDone)
			if err := serveMetrics(srvCtx, metricsLn, cfg.Daemon.MetricsWebConfig, metrics, log); err != nil {
				log.Error("metrics_listen stopped serving", "err", err)
			}
		}()
	} else {
		close(metricsDone)
	}

	log.Info("circled started", "pid", os.Getpid(), "socket", socket, "config", cfg.File, "watchers", len(cfg.Watchers))
	// A [socket:NAME] that could not be bound means Run starts nothing and
	// returns that error: a --daemon launcher must hear it, not "ok".
	ready(sup.StartupError())

	runCtx, cancelRun := context.WithCancel(context.Background())
	go handleSignals(sigs, sup, cancelRun, log)
	watchDone := make(chan struct{})
	if cfg.Daemon.WatchConfig {
		go func() { sup.WatchConfig(runCtx); close(watchDone) }()
	} else {
		close(watchDone)
		log.Info("config directory watch is off (watch_config = false)")
	}
	runErr := sup.Run(runCtx)
	cancelRun()
	<-watchDone
	close(stopped)
	afterStop(log, cfg.Daemon.GracefulTimeout, reaper)
	sup.Close()

	stopServer()
	if err := <-srvDone; err != nil {
		log.Warn("control server", "err", err)
	}
	<-inetDone
	<-metricsDone
	stopReaper()
	<-reaperDone

	var ee *supervisor.ExitError
	if errors.As(runErr, &ee) {
		return &exitError{code: ee.Code}
	}
	log.Info("circled stopped")
	return runErr
}

func newLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// readyReporter returns the function that tells a --daemon launcher how
// startup went (nil = ok). Without a launcher it does nothing.
func readyReporter() func(error) {
	fdText := os.Getenv(readyFDEnv)
	os.Unsetenv(readyFDEnv) // children must not inherit it
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return func(error) {}
	}
	f := os.NewFile(uintptr(fd), "ready")
	done := false
	return func(err error) {
		if done || f == nil {
			return
		}
		done = true
		if err == nil {
			f.WriteString("ok\n")
		} else {
			f.WriteString(err.Error())
		}
		f.Close()
	}
}
