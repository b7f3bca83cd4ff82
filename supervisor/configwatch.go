package supervisor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// debounce is how long the config directory must be quiet before a
// reload: editors and `cp -r` produce bursts of events.
const debounce = 200 * time.Millisecond

// ignoredName reports editor droppings that never affect the config.
func ignoredName(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx") ||
		strings.HasSuffix(base, "~") || strings.HasPrefix(base, ".#") || base == "4913"
}

// relevant reports whether ev can change the config: an *.ini file, a
// file the config was read from, or a directory appearing or going (a
// conf.d created later). Log files and editor droppings in the same
// directory are not.
func (s *Supervisor) relevant(ev fsnotify.Event) bool {
	if ignoredName(ev.Name) || ev.Op == fsnotify.Chmod {
		return false
	}
	if filepath.Ext(ev.Name) == ".ini" {
		return true
	}
	cfg := s.Config()
	if slices.Contains(cfg.Files, ev.Name) || slices.Contains(cfg.WatchDirs, ev.Name) {
		return true
	}
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) {
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// WatchConfig watches the config's directories (not files, so editors
// that save by rename are seen) and reloads after a quiet period, unless
// no config file's bytes changed. It returns when ctx ends. If the
// platform cannot watch (inotify limits, NFS, unsupported OS) it logs one
// warning and returns nil: SIGHUP and circlectl still reload.
func (s *Supervisor) WatchConfig(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("cannot watch the config directory; reload with SIGHUP or circlectl reloadconfig", "err", err)
		return nil
	}
	defer fw.Close()
	watched := map[string]bool{}
	sync := func() bool {
		want := map[string]bool{}
		for _, d := range s.Config().WatchDirs {
			want[d] = true
		}
		for d := range watched {
			if !want[d] {
				fw.Remove(d)
				delete(watched, d)
			}
		}
		for d := range want {
			if watched[d] {
				continue
			}
			if err := fw.Add(d); err != nil {
				s.log.Warn("cannot watch a config directory; reload with SIGHUP or circlectl reloadconfig", "dir", d, "err", err)
				if len(watched) == 0 {
					return false
				}
				continue
			}
			watched[d] = true
		}
		return true
	}
	if !sync() {
		return nil
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			s.log.Warn("config directory watch", "err", err)
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if !s.relevant(ev) {
				continue
			}
			s.log.Debug("config directory event", "event", ev.String())
			timer.Reset(debounce)
		case <-timer.C:
			if s.Stopping() {
				return nil
			}
			s.reload(ctx, true)
			sync()
		}
	}
}

func snapshot(files []string) map[string][]byte {
	m := make(map[string][]byte, len(files))
	for _, f := range files {
		// config.ReadFile never blocks (a config file replaced by a FIFO
		// must not hang the watch) and reads at most MaxFileSize.
		if b, err := config.ReadFile(f); err == nil {
			m[f] = b
		}
	}
	return m
}

func sameSnap(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
