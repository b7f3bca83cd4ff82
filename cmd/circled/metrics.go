package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/supervisor"
	"github.com/circle-supervisor/circle/watcher"
)

// watcherStates are every state circled_watcher_state reports (1 for
// the current one, 0 for the others).
var watcherStates = []string{
	watcher.StateActive, watcher.StateStarting, watcher.StateStopping, watcher.StateStopped,
	watcher.StateBackoff, watcher.StateFlapping, watcher.StateFatal,
}

// supCollector reads the supervisor at scrape time: nothing is sampled
// or updated in between, so an idle circled never wakes for metrics.
type supCollector struct {
	sup *supervisor.Supervisor

	buildInfo, state, procs, start, restarts, exits, ready, cpu, rss, dropped, reloads, lastReload *prometheus.Desc
}

func newSupCollector(sup *supervisor.Supervisor) *supCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("circled_"+name, help, labels, nil)
	}
	return &supCollector{
		sup:        sup,
		buildInfo:  d("build_info", "circled's version, commit and Go version (always 1).", "version", "revision", "goversion"),
		state:      d("watcher_state", "1 for the watcher's current state, 0 for the others.", "watcher", "state"),
		procs:      d("watcher_processes", "The watcher's processes: configured (numprocesses) and running.", "watcher", "kind"),
		start:      d("process_start_time_seconds", "Start time of the process in a watcher's slot, seconds since the Unix epoch.", "watcher", "wid"),
		restarts:   d("process_restarts_total", "Restarts of a watcher's processes by reason: crash, flapping (the retry after a flapping pause), health, manual (restart, stop then start), reload, max_memory (replaced for using more than max_memory).", "watcher", "reason"),
		exits:      d("process_exits_total", "Exits of a watcher's processes: by exit code (signal empty) or by the signal that ended them (code empty; code oom with signal KILL: the kernel's out-of-memory killer).", "watcher", "code", "signal"),
		ready:      d("process_ready", "1 when the process in a watcher's slot is ready (passed its ready.* checks, or ran min_uptime without any), else 0.", "watcher", "wid"),
		cpu:        d("process_cpu_seconds_total", "CPU time (user and system) of the process in a watcher's slot and its descendants (its process group and tree of children), in seconds.", "watcher", "wid"),
		rss:        d("process_resident_memory_bytes", "Resident memory of the process in a watcher's slot and its descendants (its process group and tree of children), in bytes.", "watcher", "wid"),
		dropped:    d("log_dropped_bytes_total", "Bytes of a watcher's output that could not be written to their destination.", "watcher"),
		reloads:    d("config_reloads_total", "Config reloads by result: success or failure (the running config was kept).", "result"),
		lastReload: d("config_last_reload_success_timestamp_seconds", "Time of the last successful config load (circled's start or a reload), seconds since the Unix epoch."),
	}
}

func (c *supCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.buildInfo, c.state, c.procs, c.start, c.restarts, c.exits, c.ready, c.cpu, c.rss, c.dropped, c.reloads, c.lastReload} {
		ch <- d
	}
}

func (c *supCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(c.buildInfo, 1, buildinfo.Version, buildinfo.Commit, buildinfo.GoVersion())
	m := c.sup.Metrics(true)
	for _, w := range m.Watchers {
		for _, s := range watcherStates {
			v := 0.0
			if w.State == s {
				v = 1
			}
			gauge(c.state, v, w.Name, s)
		}
		running := 0
		seen := map[int]bool{}
		for _, p := range w.Processes {
			if seen[p.WID] {
				continue // a process draining after a reload: its slot is listed first
			}
			seen[p.WID] = true
			wid := strconv.Itoa(p.WID)
			up := p.State == watcher.ProcRunning && p.PID != 0
			if up {
				running++
			}
			ready := 0.0
			if p.Ready && p.PID != 0 {
				ready = 1
			}
			gauge(c.ready, ready, w.Name, wid)
			if p.PID == 0 || p.State == watcher.ProcExited {
				continue
			}
			if !p.StartedAt.IsZero() {
				gauge(c.start, float64(p.StartedAt.UnixNano())/1e9, w.Name, wid)
			}
			if u, ok := w.Usage[p.PID]; ok {
				counter(c.cpu, u.CPU.Seconds(), w.Name, wid)
				gauge(c.rss, float64(u.RSS), w.Name, wid)
			}
		}
		gauge(c.procs, float64(w.NumProcesses), w.Name, "configured")
		gauge(c.procs, float64(running), w.Name, "running")
		for _, r := range supervisor.RestartReasons {
			counter(c.restarts, float64(w.Restarts[r]), w.Name, r)
		}
		for _, e := range w.Exits {
			counter(c.exits, float64(e.N), w.Name, e.Code, e.Signal)
		}
		counter(c.dropped, float64(w.DroppedBytes), w.Name)
	}
	counter(c.reloads, float64(m.ReloadsOK), "success")
	counter(c.reloads, float64(m.ReloadsFailed), "failure")
	gauge(c.lastReload, float64(m.LastReloadOK.UnixNano())/1e9)
}

// metricsHandler serves GET /metrics: circled's collector plus the Go
// runtime's and the process's (circled's own CPU, memory, fds).
func metricsHandler(sup *supervisor.Supervisor, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newSupCollector(sup),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "circled_upgrades_total",
			Help: "Live upgrades (circlectl upgrade) this circled process went through: its binary changed, its pid and processes did not.",
		}, func() float64 { return float64(liveUpgrades.Load()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPromLogger{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	})
}

type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }

// metricsMux sends GET /metrics to metrics and everything else to rest.
func metricsMux(metrics, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			metrics.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// serveMetrics serves /metrics on ln, with TLS and basic auth from the
// Prometheus web configuration file webConfig when it is set, until ctx
// ends.
func serveMetrics(ctx context.Context, ln net.Listener, webConfig string, metrics http.Handler, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "circled: metrics at /metrics")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if webConfig == "" {
		if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
			log.Warn("metrics_listen serves every client that reaches it: it is not a loopback address and no metrics_web_config sets basic auth or TLS", "addr", a.String())
		}
	}
	cfg := webConfig
	err := web.Serve(ln, srv, &web.FlagConfig{WebConfigFile: &cfg}, log)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// validateWebConfig checks metrics_web_config (its users' bcrypt
// hashes, its certificates).
func validateWebConfig(webConfig string) error {
	if err := web.Validate(webConfig); err != nil {
		return fmt.Errorf("metrics_web_config %s: %w", webConfig, err)
	}
	return nil
}

// listenMetrics opens metrics_listen, after checking its web
// configuration file (its users' bcrypt hashes, its certificates), so
// that a mistake fails circled's start. The file is read again for every
// request's basic auth and every TLS handshake.
func listenMetrics(addr, webConfig string) (net.Listener, error) {
	if err := validateWebConfig(webConfig); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	return ln, nil
}
