package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keysConfig is one watcher and one env section of n keys.
func keysConfig(n int) string {
	var b strings.Builder
	b.WriteString("[watcher:a]\ncmd = x\n[env:a]\n")
	for i := range n {
		fmt.Fprintf(&b, "K%d = value %d\n", i, i)
	}
	return b.String()
}

// watchersConfig is n watchers, each with its env section.
func watchersConfig(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[watcher:w%d]\ncmd = x %d\n[env:w%d]\nK = %d\n", i, i, i, i)
	}
	return b.String()
}

// loadTime is the fastest of three loads of content (the minimum is the
// least disturbed by other work on the machine), in this process's CPU
// time where it can be read, else in wall-clock time. (Wall-clock times
// on a loaded 2-core machine running -race gave ratios of 8.6 and 19.2
// for the 4x input: other processes stretch a 4-second load far more
// than a half-second one.)
func loadTime(t testing.TB, content string) time.Duration {
	p := filepath.Join(t.TempDir(), "circled.ini")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	now := func() time.Duration {
		if d, ok := cpuTime(); ok {
			return d
		}
		return time.Duration(time.Now().UnixNano())
	}
	best := time.Duration(1<<63 - 1)
	for range 3 {
		start := now()
		if _, err := Load(p, testOptions()); err != nil {
			t.Fatal(err)
		}
		best = min(best, now()-start)
	}
	return best
}

// Loading is linear in the number of keys per section and in the number
// of sections (issue 13.8: ini.v1 took 8 s for 60k keys and 229 s for
// 200k). Four times the keys must take well under 16 times as long, the
// quadratic ratio; no absolute time is asserted.
func TestLoadLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 200k keys")
	}
	for _, tt := range []struct {
		name string
		gen  func(int) string
		n    int
	}{
		{"keys in one section", keysConfig, 50000},
		{"sections", watchersConfig, 5000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			loadTime(t, tt.gen(tt.n/10)) // warm up
			small := loadTime(t, tt.gen(tt.n))
			large := loadTime(t, tt.gen(4*tt.n))
			ratio := float64(large) / float64(small)
			t.Logf("%d: %v, %d: %v, ratio %.1f (linear 4, quadratic 16)", tt.n, small, 4*tt.n, large, ratio)
			if ratio > 10 {
				t.Errorf("4x the input took %.1fx as long: not linear", ratio)
			}
		})
	}
}

// BenchmarkLoad200kKeys loads one section of 200k keys.
func BenchmarkLoad200kKeys(b *testing.B) {
	p := filepath.Join(b.TempDir(), "circled.ini")
	if err := os.WriteFile(p, []byte(keysConfig(200000)), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(p, testOptions()); err != nil {
			b.Fatal(err)
		}
	}
}
