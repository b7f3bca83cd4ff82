package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ConvertedFile is one file written by ConvertSupervisord; Name is
// relative to the output directory.
type ConvertedFile struct {
	Name string
	Data []byte
}

// ConvertSupervisord loads a supervisord configuration (path and the files
// it includes) and writes the same setup in circled's format: circled.ini,
// whose include_dir is conf.d, and conf.d/NAME.ini for each program (NAME
// its name) or group (NAME the group's). Loading circled.ini gives the
// same watchers and daemon settings as loading path. A "# changed:"
// comment precedes whatever means something else under circled than under
// supervisord, and "# warning:" comments list what circled ignores.
func ConvertSupervisord(path string, opts Options) (*Config, []ConvertedFile, error) {
	l, err := newLoader(path, opts)
	if err != nil {
		return nil, nil, errors.Join(err)
	}
	cfg, err := l.load()
	if err != nil {
		return nil, nil, err
	}
	if l.sv == nil {
		return nil, nil, fmt.Errorf("%s: not a supervisord configuration (no [supervisord] or [program:x] section)", l.main)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# circled configuration converted from %s by circled convert.\n", l.main)
	b.WriteString("# \"changed:\" comments say where circled's meaning differs from supervisord's.\n")
	for _, w := range cfg.Warnings {
		fmt.Fprintf(&b, "# warning: %s\n", oneLine(w.String()))
	}
	writeNotes(&b, l.sv.notes[""])
	d := cfg.Daemon
	b.WriteString("[circled]\n")
	kv := func(b *strings.Builder, k, v string) { fmt.Fprintf(b, "%s = %s\n", k, v) }
	if d.Socket != "" {
		kv(&b, "socket", d.Socket)
	}
	kv(&b, "socket_mode", fmt.Sprintf("%04o", d.SocketMode.Perm()))
	if d.Pidfile != "" {
		kv(&b, "pidfile", d.Pidfile)
	}
	kv(&b, "loglevel", d.LogLevel)
	kv(&b, "log_format", d.LogFormat)
	if d.Logfile != "" {
		kv(&b, "logfile", d.Logfile)
	}
	kv(&b, "logfile_mode", fmt.Sprintf("%04o", d.LogfileMode.Perm()))
	if d.LogfileMaxBytes > 0 {
		kv(&b, "logfile_max_bytes", strconv.FormatInt(d.LogfileMaxBytes, 10))
	}
	if d.LogfileBackups > 0 {
		kv(&b, "logfile_backups", strconv.Itoa(d.LogfileBackups))
	}
	if d.Umask >= 0 {
		kv(&b, "umask", fmt.Sprintf("%04o", d.Umask))
	}
	kv(&b, "graceful_timeout", seconds(d.GracefulTimeout))
	kv(&b, "warmup_delay", seconds(d.WarmupDelay))
	kv(&b, "watch_config", strconv.FormatBool(d.WatchConfig))
	if d.ServiceName != "" {
		kv(&b, "service_name", d.ServiceName)
	}
	sup := cfg.Supervisord
	if sup.Identifier != "" {
		kv(&b, "identifier", sup.Identifier)
	}
	kv(&b, "minfds", strconv.Itoa(sup.MinFDs))
	kv(&b, "minprocs", strconv.Itoa(sup.MinProcs))
	if h := sup.InetHTTP; h.Addr != "" {
		kv(&b, "inet_http_addr", h.Addr)
		if h.Username != "" {
			kv(&b, "inet_http_username", h.Username)
			kv(&b, "inet_http_password", h.Password)
		}
	}
	kv(&b, "include_dir", "conf.d")
	if len(l.sv.env) > 0 {
		b.WriteString("\n# The variables supervisord gives every program.\n[env]\n")
		writeEnv(&b, l.sv.env)
	}
	files := []ConvertedFile{{Name: "circled.ini", Data: []byte(b.String())}}

	// One file per program or group, in the order of the original.
	var order []string
	byFile := map[string]*strings.Builder{}
	for _, in := range l.sv.infos {
		w := in.w
		fname := w.Name
		if in.group != "" {
			fname = in.group
		}
		fb, ok := byFile[fname]
		if !ok {
			fb = &strings.Builder{}
			byFile[fname] = fb
			order = append(order, fname)
			fmt.Fprintf(fb, "# converted from %s by circled convert\n", l.main)
		}
		fmt.Fprintf(fb, "\n# from %s:%d\n", w.File, w.Line)
		writeNotes(fb, l.sv.notes[w.Name])
		writeWatcher(fb, w)
		if len(in.env) > 0 {
			fmt.Fprintf(fb, "\n[env:%s]\n", w.Name)
			writeEnv(fb, in.env)
		}
	}
	for _, n := range order {
		files = append(files, ConvertedFile{Name: "conf.d/" + n + ".ini", Data: []byte(byFile[n].String())})
	}
	return cfg, files, nil
}

func writeNotes(b *strings.Builder, notes []string) {
	for _, n := range notes {
		fmt.Fprintf(b, "# changed: %s\n", oneLine(n))
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// writeEnv writes variables for an [env] section. A value circled would
// expand ($NAME, ${NAME}, $(circle...)) or read differently gets a comment.
func writeEnv(b *strings.Builder, env []envKV) {
	for _, kv := range env {
		v := kv.v
		if strings.Contains(strings.ReplaceAll(v, WIDToken, ""), "$") || v != strings.TrimSpace(v) || strings.ContainsAny(v, "\n\r") {
			fmt.Fprintf(b, "# changed: %s: circled expands $NAME, ${NAME} and $(circle.…) in env values and trims spaces; check this value\n", kv.k)
		}
		fmt.Fprintf(b, "%s = %s\n", kv.k, oneLine(v))
	}
}

func writeWatcher(b *strings.Builder, w *Watcher) {
	kv := func(k, v string) { fmt.Fprintf(b, "%s = %s\n", k, v) }
	fmt.Fprintf(b, "[watcher:%s]\n", w.Name)
	kv("cmd", quoteArgv(w.Argv))
	if w.Shell {
		kv("shell", "true")
	}
	kv("numprocesses", strconv.Itoa(w.NumProcesses))
	if w.WorkingDir != "" {
		kv("working_dir", w.WorkingDir)
	}
	if w.UID != nil {
		if w.User != nil {
			kv("uid", w.User.Name)
		} else {
			kv("uid", strconv.Itoa(*w.UID))
		}
	}
	if w.Umask >= 0 {
		kv("umask", fmt.Sprintf("%04o", w.Umask))
	}
	kv("copy_env", strconv.FormatBool(w.CopyEnv))
	kv("copy_path", strconv.FormatBool(w.CopyPath))
	kv("stop_signal", w.StopSignal)
	kv("stop_children", strconv.FormatBool(w.StopChildren))
	kv("graceful_timeout", seconds(w.GracefulTimeout))
	switch w.RespawnMode {
	case "on-failure":
		// supervisord's spelling, which circled reads as on-failure.
		kv("respawn", "on-failure")
	case "never":
		kv("respawn", "false")
	default:
		kv("respawn", "true")
	}
	if w.ExitCodes != nil {
		codes := make([]string, len(w.ExitCodes))
		for i, c := range w.ExitCodes {
			codes[i] = strconv.Itoa(c)
		}
		kv("exitcodes", strings.Join(codes, ","))
	}
	kv("max_retry", strconv.Itoa(w.MaxRetry))
	if w.MaxFailedStarts > 0 {
		kv("max_failed_starts", strconv.Itoa(w.MaxFailedStarts))
	}
	kv("autostart", strconv.FormatBool(w.Autostart))
	kv("priority", strconv.Itoa(w.Priority))
	kv("min_uptime", seconds(w.MinUptime))
	kv("backoff_max", seconds(w.BackoffMax))
	if w.Flapping.Attempts == 0 {
		kv("check_flapping", "false")
	} else {
		kv("flapping.attempts", strconv.Itoa(w.Flapping.Attempts))
	}
	kv("flapping.window", seconds(w.Flapping.Window))
	kv("flapping.retry_in", seconds(w.Flapping.RetryIn))
	kv("flapping.max_retry", strconv.Itoa(w.Flapping.MaxRetry))
	if w.ProcessNames != nil {
		kv("process_names", strings.Join(w.ProcessNames, " "))
	}
	if el := w.EventListener; el != nil {
		kv("eventlistener.events", strings.Join(el.Events, ", "))
		kv("eventlistener.buffer_size", strconv.Itoa(el.BufferSize))
	}
	kv("wid_offset", strconv.Itoa(w.WIDOffset))
	kv("wid_width", strconv.Itoa(w.WIDWidth))
	if w.RedirectStderr {
		kv("redirect_stderr", "true")
	}
	writeStream(b, "stdout_stream", w.Stdout)
	if !w.RedirectStderr {
		writeStream(b, "stderr_stream", w.Stderr)
	}
}

func writeStream(b *strings.Builder, prefix string, st Stream) {
	kv := func(k, v string) { fmt.Fprintf(b, "%s.%s = %s\n", prefix, k, v) }
	switch st.Class {
	case "null":
		kv("class", "NullStream")
		return
	case "file":
		kv("class", "FileStream")
	default:
		kv("class", "StdoutStream")
		return
	}
	kv("filename", st.Filename)
	kv("max_bytes", strconv.FormatInt(st.MaxBytes, 10))
	kv("backup_count", strconv.Itoa(st.BackupCount))
	kv("file_mode", fmt.Sprintf("%04o", st.FileMode.Perm()))
}

// IsSupervisord reports whether the file at path is a supervisord
// configuration (a [supervisord] or [program:x] section), as Load decides.
func IsSupervisord(path string) (bool, error) {
	data, err := ReadFile(path)
	if err != nil {
		return false, err
	}
	f, errs := parseSource(path, 0, data)
	if f == nil {
		return false, errs[0]
	}
	return isSupervisordFile(f), nil
}
