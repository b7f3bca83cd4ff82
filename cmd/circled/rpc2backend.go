package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/internal/safefile"
	"github.com/circle-supervisor/circle/rpc2"
	"github.com/circle-supervisor/circle/supervisor"
	"github.com/circle-supervisor/circle/supervisor/config"
)

// rpc2backend adapts the supervisor to rpc2.Backend (supervisord's
// XML-RPC API; rpc2 never imports the supervisor), as backend adapts it to
// ctl.Backend.
//
// Logs: a process's log is its stream's file when the stream is a file
// (class file or timed; offsets are the file's, as supervisord's). The
// in-memory ring cannot serve per-process offsets (it is per watcher, both
// streams interleaved, offsets counted over records), so readProcess*Log
// and tailProcess*Log of a watcher logging to circled's stdout answer
// NO_FILE. Following (GET /logtail, `supervisorctl tail -f`) works for
// every watcher whose output is not discarded: it reads the ring through
// Supervisor.Logs and keeps this process's lines, without their
// "NAME.WID | " prefix. circled's own log is its logfile when it has one.
type rpc2backend struct {
	sup *supervisor.Supervisor
	// mainLog is the file circled writes its own log to ("" = stderr).
	mainLog string
}

var (
	_ rpc2.Backend     = rpc2backend{}
	_ rpc2.LogFollower = rpc2backend{}
)

// rpc2Err turns supervisor errors into rpc2's sentinels.
func rpc2Err(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, supervisor.ErrNoSuchWatcher):
		return faultErr(rpc2.ErrNoSuchGroup, "%s", trimPrefix(err, supervisor.ErrNoSuchWatcher))
	case errors.Is(err, supervisor.ErrBadConfig):
		return faultErr(rpc2.ErrBadConfig, "%s", trimPrefix(err, supervisor.ErrBadConfig))
	case errors.Is(err, supervisor.ErrShuttingDown):
		// A command that passed busy() just before shutdown began.
		return rpc2.ErrShuttingDown
	}
	return err
}

// detailErr is one of rpc2's sentinels whose text is only the detail:
// rpc2 makes the fault string "CODE_NAME: " + the error's text.
type detailErr struct {
	sentinel error
	detail   string
}

func (e *detailErr) Error() string { return e.detail }
func (e *detailErr) Unwrap() error { return e.sentinel }

func faultErr(sentinel error, format string, args ...any) error {
	return &detailErr{sentinel: sentinel, detail: fmt.Sprintf(format, args...)}
}

func (b rpc2backend) busy() error {
	if b.sup.Stopping() {
		return rpc2.ErrShuttingDown
	}
	return nil
}

func (b rpc2backend) Info(ctx context.Context) (rpc2.Info, error) {
	// identifier is live: a reload changes it.
	return rpc2.Info{Version: buildinfo.Version, Identification: b.sup.Config().Supervisord.Identifier,
		PID: os.Getpid(), ShuttingDown: b.sup.Stopping()}, nil
}

// watcherCfg returns the running config of watcher name.
func (b rpc2backend) watcherCfg(name string) (*config.Watcher, error) {
	for _, wc := range b.sup.Config().Watchers {
		if wc.Name == name {
			return wc, nil
		}
	}
	return nil, faultErr(rpc2.ErrNoSuchGroup, "%s", name)
}

// streamFile is the file process wid of wc logs stream to, "" when none.
func streamFile(wc *config.Watcher, stream string, wid int) string {
	st := wc.Stdout
	if stream == "stderr" {
		if wc.RedirectStderr {
			return "" // in the stdout log, as supervisord's redirect_stderr
		}
		st = wc.Stderr
	}
	if st.Class != "file" && st.Class != "timed" {
		return ""
	}
	return strings.ReplaceAll(st.Filename, config.WIDToken, strconv.Itoa(wid))
}

// signalNumber is the Linux number of a canonical signal name (config's
// numbering on every OS); 0 if it has none.
func signalNumber(name string) int {
	for n := 1; n <= 64; n++ {
		if s, err := config.ParseSignal(strconv.Itoa(n)); err == nil && s == name {
			return n
		}
	}
	return 0
}

func (b rpc2backend) Groups(ctx context.Context) ([]rpc2.Group, error) {
	ws, _, err := b.sup.Status(nil) // highest priority first: start order
	if err != nil {
		return nil, rpc2Err(err)
	}
	cfgs := map[string]*config.Watcher{}
	for _, wc := range b.sup.Config().Watchers {
		cfgs[wc.Name] = wc
	}
	out := make([]rpc2.Group, 0, len(ws))
	for _, w := range ws {
		g := rpc2.Group{Name: w.Name, State: w.State, NumProcesses: w.NumProcesses, Priority: w.Priority,
			Autostart: w.Autostart, Error: w.Error, Wanted: b.sup.Wanted(w.Name), Processes: make([]rpc2.Process, 0, len(w.Processes))}
		wc := cfgs[w.Name]
		for _, p := range w.Processes {
			rp := rpc2.Process{WID: p.WID, PID: p.PID, State: p.State, StartedAt: p.StartedAt, HasExit: p.HasExit,
				ExitCode: p.LastExit.Code, ExitSignal: p.LastExit.Signal, Error: p.Error}
			if p.HasExit && p.PID == 0 {
				rp.StoppedAt = p.LastExit.Time
			}
			if wc != nil {
				rp.StdoutLogfile = streamFile(wc, "stdout", p.WID)
				rp.StderrLogfile = streamFile(wc, "stderr", p.WID)
				rp.RedirectStderr = wc.RedirectStderr
			}
			g.Processes = append(g.Processes, rp)
		}
		if wc != nil {
			user := ""
			switch {
			case wc.User != nil:
				user = wc.User.Name
			case wc.UID != nil:
				user = strconv.Itoa(*wc.UID)
			}
			g.Config = rpc2.Config{Command: strings.Join(wc.Argv, " "), Directory: wc.WorkingDir, User: user,
				StopSignal: signalNumber(wc.StopSignal), StopWaitSecs: int(wc.GracefulTimeout / time.Second),
				StartSecs: int(wc.MinUptime / time.Second), StartRetries: wc.MaxRetry, KillAsGroup: wc.StopChildren}
		}
		out = append(out, g)
	}
	return out, nil
}

func (b rpc2backend) Start(ctx context.Context, group string, wid int, wait bool) error {
	if err := b.busy(); err != nil {
		return err
	}
	if wid != 0 {
		return faultErr(rpc2.ErrUnsupported, "circle starts a watcher's processes together (use %s:*)", group)
	}
	_, err := b.sup.Start(ctx, []string{group}, wait)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, supervisor.ErrNoSuchWatcher), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return rpc2Err(err)
	}
	// A start with wait that did not end running: fatal, flapping or a
	// spawn error.
	return &detailErr{sentinel: rpc2.ErrSpawn, detail: err.Error()}
}

func (b rpc2backend) Stop(ctx context.Context, group string, wid int, wait bool) error {
	if err := b.busy(); err != nil {
		return err
	}
	if wid != 0 {
		return faultErr(rpc2.ErrUnsupported, "circle stops a watcher's processes together (use %s:*)", group)
	}
	_, err := b.sup.Stop(ctx, []string{group}, wait)
	return rpc2Err(err)
}

func (b rpc2backend) Signal(ctx context.Context, group string, pid int, sig string) error {
	if _, err := config.ParseSignal(sig); err != nil {
		return faultErr(rpc2.ErrBadSignal, "%s", sig)
	}
	return rpc2Err(b.sup.Signal(group, sig, pid, false))
}

func (b rpc2backend) ReloadConfig(ctx context.Context) (rpc2.Changes, error) {
	if err := b.busy(); err != nil {
		return rpc2.Changes{}, err
	}
	s, err := b.sup.ReloadConfig(ctx)
	if err != nil {
		return rpc2.Changes{}, rpc2Err(err)
	}
	var changed []string
	changed = append(changed, s.Restarted...)
	changed = append(changed, s.Scaled...)
	changed = append(changed, s.Updated...)
	return rpc2.Changes{Added: s.Added, Changed: changed, Removed: s.Removed}, nil
}

// logPath is the file of ref: "" when it has none.
func (b rpc2backend) logPath(ref rpc2.LogRef) (string, error) {
	if ref.Group == "" {
		return b.mainLog, nil
	}
	wc, err := b.watcherCfg(ref.Group)
	if err != nil {
		return "", err
	}
	return streamFile(wc, ref.Stream, ref.WID), nil
}

// openLog opens a log file for reading, never following a symbolic link
// at its path (safefile, as circled writes it).
func openLog(path string) (*os.File, error) {
	d, err := safefile.OpenDir(filepath.Dir(path), false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.OpenFile(filepath.Base(path), os.O_RDONLY, 0)
}

// readLogFile reads up to n bytes of path from off, or its last n bytes
// when off < 0.
func readLogFile(path string, off int64, n int) (rpc2.LogChunk, error) {
	f, err := openLog(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rpc2.LogChunk{}, faultErr(rpc2.ErrNoLog, "%s", path)
	}
	if err != nil {
		return rpc2.LogChunk{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return rpc2.LogChunk{}, err
	}
	size := fi.Size()
	from := off
	if off < 0 {
		from = max(size-int64(n), 0)
	}
	from = min(from, size)
	buf := make([]byte, min(int64(n), size-from))
	m, err := f.ReadAt(buf, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return rpc2.LogChunk{}, err
	}
	return rpc2.LogChunk{Data: buf[:m], From: from, Size: size}, nil
}

func (b rpc2backend) ReadLog(ctx context.Context, ref rpc2.LogRef, off int64, n int) (rpc2.LogChunk, error) {
	path, err := b.logPath(ref)
	if err != nil {
		return rpc2.LogChunk{}, err
	}
	switch {
	case path != "":
		return readLogFile(path, off, n)
	case ref.Group == "":
		return rpc2.LogChunk{}, faultErr(rpc2.ErrNoLog, "circled has no logfile")
	}
	return rpc2.LogChunk{}, faultErr(rpc2.ErrNoLog, "%s's %s does not go to a file", ref.Group, ref.Stream)
}

// ClearLog truncates a process's log files (both streams) or circled's
// logfile, as supervisord's clearLog does. The writer appends (O_APPEND),
// so it goes on at the new end.
func (b rpc2backend) ClearLog(ctx context.Context, ref rpc2.LogRef) error {
	var paths []string
	if ref.Group == "" {
		paths = append(paths, b.mainLog)
	} else {
		wc, err := b.watcherCfg(ref.Group)
		if err != nil {
			return err
		}
		paths = append(paths, streamFile(wc, "stdout", ref.WID), streamFile(wc, "stderr", ref.WID))
	}
	cleared := false
	for _, p := range paths {
		if p == "" {
			continue
		}
		f, err := openLogWrite(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil {
			f.Close()
		}
		cleared = true
	}
	if !cleared {
		return faultErr(rpc2.ErrNoLog, "no log file to clear")
	}
	return nil
}

// openLogWrite opens path truncated (after safefile's checks).
func openLogWrite(path string) (*os.File, error) {
	d, err := safefile.OpenDir(filepath.Dir(path), false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.OpenFile(filepath.Base(path), os.O_WRONLY|os.O_TRUNC, 0)
}

func (b rpc2backend) Shutdown(ctx context.Context) error {
	if err := b.busy(); err != nil {
		return err
	}
	b.sup.Quit()
	return nil
}

// Restart is supervisord's restart: the config is read again (and
// applied), then every watcher stops and the autostart ones start again.
// It returns once the config is read; the restart goes on in the
// background.
func (b rpc2backend) Restart(ctx context.Context) error {
	if err := b.busy(); err != nil {
		return err
	}
	if _, err := b.sup.ReloadConfig(ctx); err != nil {
		return rpc2Err(err)
	}
	var auto []string
	for _, wc := range b.sup.Config().Watchers {
		if wc.Autostart {
			auto = append(auto, wc.Name)
		}
	}
	go func() {
		ctx := context.Background()
		if _, err := b.sup.Stop(ctx, nil, true); err != nil || len(auto) == 0 || b.sup.Stopping() {
			return
		}
		b.sup.Start(ctx, auto, false)
	}()
	return nil
}

// FollowLog implements rpc2.LogFollower: a process's lines come from the
// watcher's ring (Supervisor.Logs), circled's own from its logfile.
func (b rpc2backend) FollowLog(ctx context.Context, ref rpc2.LogRef, tail int, w io.Writer) error {
	if ref.Group == "" {
		if b.mainLog == "" {
			return rpc2.ErrNoLog
		}
		return followFile(ctx, b.mainLog, tail, w)
	}
	wc, err := b.watcherCfg(ref.Group)
	if err != nil {
		return err
	}
	st := wc.Stdout
	if ref.Stream == "stderr" {
		st = wc.Stderr
		if wc.RedirectStderr {
			return rpc2.ErrNoLog
		}
	}
	if st.Class == "null" {
		return rpc2.ErrNoLog
	}
	fw := &widFilter{w: w, prefix: []byte(ref.Group + "." + strconv.Itoa(ref.WID) + " | "), tail: tail, first: true}
	// The ring keeps at most logs.RingSize bytes: asking for more lines
	// than it can hold gets all of them.
	return rpc2Err(b.sup.Logs(ctx, ref.Group, 1<<30, true, ref.Stream, fw))
}

// widFilter passes on the lines of one process (those starting with its
// "NAME.WID | " prefix), without the prefix. Supervisor.Logs writes whole
// lines, the backlog in the first Write: of that, only the last tail
// bytes are kept.
type widFilter struct {
	w      io.Writer
	prefix []byte
	tail   int
	first  bool
	out    []byte
}

func (f *widFilter) Write(p []byte) (int, error) {
	n := len(p)
	f.out = f.out[:0]
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i+1], p[i+1:]
		} else {
			p = nil
		}
		if rest, ok := bytes.CutPrefix(line, f.prefix); ok {
			f.out = append(f.out, rest...)
		}
	}
	out := f.out
	if f.first {
		f.first = false
		if len(out) > f.tail {
			out = out[len(out)-f.tail:]
		}
	} else if len(out) == 0 {
		return n, nil
	}
	if _, err := f.w.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}

// followPoll is how often followFile looks for new bytes.
const followPoll = 250 * time.Millisecond

// followFile writes the last tail bytes of path, then what is appended
// to it, until ctx ends. A file that shrinks (rotated or cleared) is
// read again from its start.
func followFile(ctx context.Context, path string, tail int, w io.Writer) error {
	c, err := readLogFile(path, -1, tail)
	if err != nil {
		return err
	}
	if _, err := w.Write(c.Data); err != nil {
		return nil
	}
	off := c.Size
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			c, err := readLogFile(path, off, rpc2.MaxRead)
			if err != nil {
				break // rotated away for now: look again later
			}
			if c.Size < off {
				off = 0
				continue
			}
			if len(c.Data) == 0 {
				break
			}
			if _, err := w.Write(c.Data); err != nil {
				return nil
			}
			off = c.From + int64(len(c.Data))
		}
	}
}

// rpc2Mux sends supervisord's paths (rpc2.Serves: /RPC2, /logtail/...,
// /mainlogtail) to rpc and everything else to rest (ctl's API).
func rpc2Mux(rpc, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rpc2.Serves(r.URL.Path) {
			rpc.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}
