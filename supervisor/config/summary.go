package config

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteSummary prints the resolved watchers, then the warnings, for a
// person to read (circled check).
func (c *Config) WriteSummary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("config: %s\n", c.File)
	for _, f := range c.Files[min(1, len(c.Files)):] {
		if !slices.Contains(c.EnvFiles, f) {
			p("  include:\t%s\n", f)
		}
	}
	for _, f := range c.EnvFiles {
		p("  env_file:\t%s\n", f)
	}
	for _, sk := range c.Sockets {
		d := sk.Type
		if sk.Type == "SOCK_STREAM" {
			d += fmt.Sprintf(" backlog=%d", sk.Backlog)
		}
		if sk.Umask >= 0 {
			d += fmt.Sprintf(" umask=%04o", sk.Umask)
		}
		for _, f := range []struct {
			on   bool
			name string
		}{{sk.ReusePort, "so_reuseport"}, {sk.Blocking, "blocking"}, {sk.Replace, "replace"}} {
			if f.on {
				d += " " + f.name
			}
		}
		if sk.Interface != "" {
			d += " interface=" + sk.Interface
		}
		p("  socket %s:\t%s %s\n", sk.Name, sk.Addr(), d)
	}
	if c.Daemon.Socket != "" {
		p("  socket:\t%s\n", c.Daemon.Socket)
	}
	if h := c.Supervisord.InetHTTP; h.Addr != "" {
		p("  xml-rpc over tcp:\t%s\n", h.Addr)
	}
	p("%d watcher(s)\n", len(c.Watchers))
	for _, wt := range c.Watchers {
		p("\nwatcher %s\t(%s:%d)\n", wt.Name, wt.File, wt.Line)
		argv := make([]string, len(wt.Argv))
		for i, a := range wt.Argv {
			argv[i] = wt.ExpandSocketTokens(a)
		}
		p("  argv:\t%s\n", quoteArgv(argv))
		np := strconv.Itoa(wt.NumProcesses)
		if wt.Singleton {
			np += " (singleton)"
		}
		p("  numprocesses:\t%s\n", np)
		p("  priority:\t%d\n", wt.Priority)
		wd := wt.WorkingDir
		if wd == "" {
			wd = "(circled's working directory)"
		}
		p("  working_dir:\t%s\n", wd)
		target := "process group"
		if !wt.StopChildren {
			target = "main process only"
		}
		sig := "SIG" + wt.StopSignal
		if _, err := strconv.Atoi(wt.StopSignal); err == nil {
			sig = "signal " + wt.StopSignal
		}
		p("  stop:\t%s to the %s, SIGKILL after %s\n", sig, target, wt.GracefulTimeout)
		p("  restart:\trespawn=%s autostart=%t max_retry=%d min_uptime=%s backoff_max=%s\n",
			wt.RespawnMode, wt.Autostart, wt.MaxRetry, wt.MinUptime, wt.BackoffMax)
		if wt.ExitCodes != nil {
			codes := make([]string, len(wt.ExitCodes))
			for i, c := range wt.ExitCodes {
				codes[i] = strconv.Itoa(c)
			}
			p("  exitcodes:\t%s\n", strings.Join(codes, ","))
		}
		writeReadiness(p, wt)
		if wt.WIDOffset != 0 || wt.WIDWidth != 0 {
			p("  $(circle.wid):\twid%+d, %d digits\n", wt.WIDOffset, max(wt.WIDWidth, 1))
		}
		if n := len(wt.ProcessNames); n > 0 {
			names := strings.Join(wt.ProcessNames[:min(n, 8)], " ")
			if n > 8 {
				names += fmt.Sprintf(" ... (%d)", n)
			}
			p("  process_names:\t%s\n", names)
		}
		if wt.Flapping.Attempts > 0 {
			p("  flapping:\t%d exits in %s: retry in %s, at most %d times\n",
				wt.Flapping.Attempts, wt.Flapping.Window, wt.Flapping.RetryIn, wt.Flapping.MaxRetry)
		} else {
			p("  flapping:\toff (check_flapping = false)\n")
		}
		if len(wt.Sockets) > 0 {
			var fds []string
			for i, sk := range wt.Sockets {
				fds = append(fds, fmt.Sprintf("%s=fd %d", sk.Name, 3+i))
			}
			p("  sockets:\t%s\n", strings.Join(fds, " "))
		}
		if wt.MaxAge > 0 {
			p("  max_age:\t%s (+ up to %s)\n", wt.MaxAge, wt.MaxAgeVariance)
		}
		if l := wt.Limits; l.Any() {
			var parts []string
			for _, f := range []struct {
				v    int64
				name string
			}{{l.MemoryMax, "memory_max"}, {l.MemoryHigh, "memory_high"}} {
				if f.v > 0 {
					parts = append(parts, f.name+"="+humanSize(f.v))
				}
			}
			if l.CPUMax > 0 {
				parts = append(parts, fmt.Sprintf("cpu_max=%g%%", l.CPUMax))
			}
			if l.PidsMax > 0 {
				parts = append(parts, fmt.Sprintf("pids_max=%d", l.PidsMax))
			}
			if l.IOWeight > 0 {
				parts = append(parts, fmt.Sprintf("io_weight=%d", l.IOWeight))
			}
			p("  limits:\t%s\n", strings.Join(parts, " "))
		}
		if wt.MaxMemory > 0 {
			p("  max_memory:\t%s (sampled every %s without cgroup events)\n", humanSize(wt.MaxMemory), wt.MaxMemoryInterval)
		}
		for _, n := range HookNames {
			if h := wt.Hooks.Get(n); h != "" {
				p("  hooks.%s:\t%s (timeout %s)\n", n, h, wt.Hooks.Timeout)
			}
		}
		if el := wt.EventListener; el != nil {
			p("  event listener:\t%s (buffer_size %d)\n", strings.Join(el.Events, ","), el.BufferSize)
		}
		writeCredentials(p, wt)
		if wt.Umask >= 0 {
			p("  umask:\t%04o\n", wt.Umask)
		}
		for _, r := range wt.Rlimits {
			v := strconv.FormatUint(r.Value, 10)
			if r.Value == RlimInfinity {
				v = "unlimited"
			}
			p("  rlimit_%s:\t%s\n", r.Name, v)
		}
		for i, kv := range wt.Env {
			label := ""
			if i == 0 {
				label = "env:"
			}
			p("  %s\t%s\n", label, kv)
		}
		p("  stdout:\t%s\n", describeStream(wt.Stdout))
		if wt.RedirectStderr {
			p("  stderr:\tmerged into stdout\n")
		} else {
			p("  stderr:\t%s\n", describeStream(wt.Stderr))
		}
	}
	if len(c.Warnings) > 0 {
		p("\n%d warning(s):\n", len(c.Warnings))
		for _, wn := range c.Warnings {
			p("  %s\n", wn)
		}
	}
	return tw.Flush()
}

func describeStream(s Stream) string {
	switch s.Class {
	case "file", "timed":
		d := s.Class + " " + s.Filename + fmt.Sprintf(" mode=%04o", s.FileMode.Perm())
		if s.MaxBytes > 0 {
			d += fmt.Sprintf(" max_bytes=%d", s.MaxBytes)
		}
		if s.BackupCount > 0 {
			d += fmt.Sprintf(" backup_count=%d", s.BackupCount)
		}
		if s.MaxAge > 0 {
			d += fmt.Sprintf(" max_age=%dd", s.MaxAge)
		}
		if s.Compress {
			d += " compress"
		}
		if s.Class == "timed" {
			d += fmt.Sprintf(" rotate_when=%s rotate_interval=%d", s.RotateWhen, s.RotateInterval)
		}
		if s.TimeFormat != "" {
			d += fmt.Sprintf(" time_format=%q", s.TimeFormat)
		}
		return d
	case "null":
		return "discarded"
	}
	return "circled's output"
}

// quoteArgv renders argv so that it splits back into the same words.
func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n\r\f\v\"'\\$`;&|<>*?#()[]{}~") {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// writeCredentials prints who a watcher's processes run as: the user, the
// primary group and the complete supplementary group list.
func writeCredentials(p func(string, ...any), wt *Watcher) {
	if wt.UID == nil && wt.GID == nil {
		return
	}
	switch u := wt.User; {
	case wt.UID == nil:
		p("  user:\tcircled's\n")
	case u == nil:
		p("  user:\tuid %d (no passwd entry: HOME, USER, LOGNAME and SHELL are not set)\n", *wt.UID)
	default:
		p("  user:\t%s (uid %d) home %s shell %s\n", u.Name, u.UID, u.Home, u.Shell)
	}
	p("  group:\t%s\n", groupName(wt, *wt.GID))
	if len(wt.Groups) == 0 {
		p("  groups:\t(none)\n")
		return
	}
	names := make([]string, len(wt.Groups))
	for i, g := range wt.Groups {
		names[i] = groupName(wt, g)
	}
	p("  groups:\t%s\n", strings.Join(names, ", "))
}

// groupName renders gid as "name (gid N)", or "gid N" when it has no name.
func groupName(wt *Watcher, gid int) string {
	if n, ok := wt.GroupNames[gid]; ok {
		return fmt.Sprintf("%s (gid %d)", n, gid)
	}
	return fmt.Sprintf("gid %d", gid)
}

// writeReadiness prints the ready.*, watchdog, health.*, depends_on and
// reload_signal settings (issue 15).
func writeReadiness(p func(string, ...any), wt *Watcher) {
	r := wt.Ready
	if r.Any() {
		var checks []string
		if r.TCP != "" {
			checks = append(checks, "tcp "+r.TCP)
		}
		if r.HTTP != "" {
			checks = append(checks, "http "+r.HTTP)
		}
		if r.Exec != "" {
			checks = append(checks, "exec "+r.Exec)
		}
		if r.Log != "" {
			checks = append(checks, fmt.Sprintf("log %q", r.Log))
		}
		if r.Notify {
			checks = append(checks, "notify (sd_notify READY=1)")
		}
		p("  ready:\t%s; timeout %s, interval %s\n", strings.Join(checks, ", "), r.Timeout, r.Interval)
	} else {
		p("  ready:\tafter min_uptime (%s)\n", wt.MinUptime)
	}
	if wt.Watchdog > 0 {
		p("  watchdog:\tWATCHDOG=1 at least every %s\n", wt.Watchdog)
	}
	if h := wt.Health; h.Any() {
		var checks []string
		if h.TCP != "" {
			checks = append(checks, "tcp "+h.TCP)
		}
		if h.HTTP != "" {
			checks = append(checks, "http "+h.HTTP)
		}
		if h.Exec != "" {
			checks = append(checks, "exec "+h.Exec)
		}
		p("  health:\t%s; every %s, timeout %s, restart after %d failures in a row\n", strings.Join(checks, ", "), h.Interval, h.Timeout, h.Retries)
	}
	if len(wt.DependsOn) > 0 {
		deps := make([]string, len(wt.DependsOn))
		for i, d := range wt.DependsOn {
			deps[i] = d.Name + ":" + d.Condition
		}
		p("  depends_on:\t%s\n", strings.Join(deps, ", "))
	}
	if wt.ReloadSignal != "" {
		sig := "SIG" + wt.ReloadSignal
		if _, err := strconv.Atoi(wt.ReloadSignal); err == nil {
			sig = "signal " + wt.ReloadSignal
		}
		p("  reload:\t%s to each process (reload_signal)\n", sig)
	}
}
