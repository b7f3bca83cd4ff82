//go:build unix

package procstate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// many goroutines start and end processes at once (the watchers'
// owners do); once they are done, what the file reads back is exactly the
// live set: no journal line lost or reordered between Started/Ended,
// pending and the snapshots (compactions happen during the run).
func TestJournalConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock.state")
	f, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	const gs, per = 8, 400
	var wg sync.WaitGroup
	want := []int{}
	var mu sync.Mutex
	for g := range gs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				pid := 1000 + g*per + i
				f.Started("w", g, pid, uint64(pid))
				if i%7 != 0 {
					f.Ended(pid)
				} else {
					mu.Lock()
					want = append(want, pid)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	slices.Sort(want)
	var got []int
	ok, _ := testhelper.Wait(30*time.Second, func() (bool, string) {
		st, err := read(path)
		if err != nil || st == nil {
			return false, fmt.Sprint(err)
		}
		got = pids(st)
		slices.Sort(got)
		return slices.Equal(got, want), ""
	})
	if !ok {
		t.Fatalf("file has %d procs, want %d", len(got), len(want))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// the state file is removed behind circled's back (a tmp cleaner,
// an operator): before ad135a3 the next change put it back (tmp+rename);
// now the appends go to the unlinked inode until a compaction, and a crash
// meanwhile finds nothing to recover.
func TestJournalFileRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock.state")
	f, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Started("web", 1, 101, 5001)
	testhelper.Eventually(t, 20*time.Second, "101 recorded", func() bool {
		st, _ := read(path)
		return st != nil && len(st.Procs) == 1
	})
	os.Remove(path)
	f.Started("web", 2, 102, 5002)
	ok, _ := testhelper.Wait(20*time.Second, func() (bool, string) { // never, when it is not rewritten; seconds on a loaded host
		st, _ := read(path)
		return st != nil && len(st.Procs) == 2, ""
	})
	if !ok {
		t.Fatalf("the state file, removed, was not written again after a change (101 and 102 run; a crash now recovers neither)")
	}
}

// the compaction threshold uses 48 bytes per proc line; a line
// with a long watcher name (names may be 128 bytes) is ~165 bytes, so with
// some 60+ such processes the file outgrows the threshold right after the
// snapshot and every change is again a tmp+rename (the cost ad135a3
// removes).
func TestJournalLongNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock.state")
	f, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	name := strings.Repeat("n", 128)
	const n = 100
	for i := range n {
		f.Started(name, i+1, 3000000+i, 864000000+uint64(i))
	}
	testhelper.Eventually(t, 20*time.Second, "all recorded", func() bool {
		st, _ := read(path)
		return st != nil && len(st.Procs) == n
	})
	ino := func() uint64 {
		fi, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	renames := 0
	for i := range 10 {
		before := ino()
		f.Ended(3000000 + i)
		testhelper.Eventually(t, 20*time.Second, "the end recorded", func() bool {
			st, _ := read(path)
			return st != nil && len(st.Procs) == n-i-1
		})
		if ino() != before {
			renames++
		}
	}
	if renames > 1 {
		t.Errorf("%d of 10 changes rewrote the whole file (tmp+rename) instead of appending a line", renames)
	}
}

// Close while changes keep coming: after Close returns, nothing
// writes the file again (a late update or snapshot would re-create it and
// leave a stale state file after a clean exit).
func TestJournalCloseRace(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "c.sock.state")
		f, _, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					pid := 1000 + g*1000000 + i
					f.Started("w", g, pid, 1)
					f.Ended(pid)
					if i%50 == 0 {
						f.SetCgroup("/x")
					}
				}
			}()
		}
		time.Sleep(time.Duration(round) * time.Millisecond) // varies where Close lands among the writes; not synchronisation
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		reappeared, _ := testhelper.Wait(200*time.Millisecond, func() (bool, string) {
			_, err := os.Lstat(path)
			return err == nil, ""
		})
		close(stop)
		wg.Wait()
		if reappeared {
			t.Fatalf("round %d: the state file exists after Close", round)
		}
		if _, err := os.Lstat(path + ".tmp"); err == nil {
			t.Fatalf("round %d: %s.tmp left after Close", round, path)
		}
	}
}

// when Start's first write fails (disk full, quota; here a
// directory squats the temporary file's name) Start returns the error and
// no writer goroutine runs; circled goes on (crash recovery off, a warning)
// and every Started/Ended appends to f.pending, which nothing ever drains:
// under a crash loop memory grows without bound.
func TestPendingGrowsWhenStartFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock.state")
	if err := os.MkdirAll(filepath.Join(path+".tmp", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	f, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err == nil {
		t.Fatal("Start worked; the test needs it to fail")
	}
	defer f.Close()
	for i := range 10000 {
		f.Started("web", 1, 1000+i, 5000)
		f.Ended(1000 + i)
	}
	f.mu.Lock()
	n := len(f.pending)
	f.mu.Unlock()
	if n > 64<<10 {
		t.Errorf("after 10000 restarts with no writer, %d bytes of journal lines are held in memory (and grow with every restart)", n)
	}
}
