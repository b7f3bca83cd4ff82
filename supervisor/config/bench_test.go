package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBenchConfig writes a main file and conf.d/ with n watchers spread
// over files of 50, each using env sections and substitutions, as a large
// real deployment would.
func writeBenchConfig(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	confd := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confd, 0o755); err != nil {
		b.Fatal(err)
	}
	main := "[circled]\ninclude_dir = conf.d\nloglevel = info\ngraceful_timeout = 10\n\n[env]\nGREETING = hello\n"
	if err := os.WriteFile(filepath.Join(dir, "circled.ini"), []byte(main), 0o644); err != nil {
		b.Fatal(err)
	}
	for f := 0; f < n/50; f++ {
		var sb strings.Builder
		for i := f * 50; i < (f+1)*50; i++ {
			fmt.Fprintf(&sb, "[watcher:app%04d]\ncmd = /bin/sleep 1000 $(circle.env.GREETING)\nnumprocesses = 2\n"+
				"working_dir = /tmp\nstop_signal = INT\ngraceful_timeout = 5\npriority = %d\n"+
				"stdout_stream.class = FileStream\nstdout_stream.filename = /tmp/app%04d-$(circle.wid).log\n"+
				"stdout_stream.max_bytes = 10MB\nstdout_stream.backup_count = 5\n\n"+
				"[env:app%04d]\nAPP_ID = %d\nHOME_DIR = $HOME\n\n", i, i%5, i, i, i)
		}
		if err := os.WriteFile(filepath.Join(confd, fmt.Sprintf("part%02d.ini", f)), []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return filepath.Join(dir, "circled.ini")
}

// BenchmarkLoad500 is a full config load (read, merge, validate, resolve)
// of 500 watchers in 10 included files.
func BenchmarkLoad500(b *testing.B) {
	path := writeBenchConfig(b, 500)
	opts := Options{Environ: []string{"HOME=/root", "PATH=/usr/bin:/bin"}}
	cfg, err := Load(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	if len(cfg.Watchers) != 500 {
		b.Fatalf("got %d watchers", len(cfg.Watchers))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(path, opts); err != nil {
			b.Fatal(err)
		}
	}
}
