//go:build unix

package procstate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

func readState(t *testing.T, path string) *State {
	t.Helper()
	st, err := read(path)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		t.Fatal("no state file")
	}
	return st
}

func pids(st *State) []int {
	var ps []int
	for _, p := range st.Procs {
		ps = append(ps, p.PID)
	}
	return ps
}

// Changes are appended to the file as a journal; what it reads back is
// the live set, and a long run of changes is compacted into a snapshot.
func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock.state")
	f, prev, err := Open(path)
	if err != nil || prev != nil {
		t.Fatalf("Open: %v %v", prev, err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	f.Started("web", 1, 101, 5001)
	f.Started("web", 2, 102, 5002)
	f.Started("web", 3, 103, 5003)
	f.Ended(102)
	testhelper.Eventually(t, 20*time.Second, "101 and 103 recorded", func() bool {
		st, _ := read(path)
		return st != nil && len(st.Procs) == 2 && st.Procs[0].PID == 101 && st.Procs[1].PID == 103
	})
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte("\nend 102\n")) {
		t.Errorf("the change was not appended as a journal line:\n%s", b)
	}
	// 5000 more changes: the file stays about the size of its snapshot.
	for i := range 2500 {
		f.Started("w", 1, 1000+i, 7000)
		f.Ended(1000 + i)
	}
	f.Started("w", 9, 99999, 8000)
	testhelper.Eventually(t, 20*time.Second, "99999 recorded", func() bool {
		st, _ := read(path)
		return st != nil && len(st.Procs) == 3 && st.Procs[2].PID == 99999
	})
	if fi, err := os.Stat(path); err != nil || fi.Size() > 8192 {
		t.Errorf("journal not compacted: %v bytes (%v)", fi.Size(), err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("state file left after Close: %v", err)
	}
}

// A journal line cut short (circled killed mid-write) is ignored; the
// lines before it count.
func TestTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.state")
	body := magic + "\nowner 1 2\nproc 101 5001 101 1 \"web\"\nproc 102 5002 102 2 \"web\"\nend 101\nproc 103 50"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st := readState(t, path)
	if got := pids(st); len(got) != 1 || got[0] != 102 {
		t.Fatalf("procs %v, want [102]", got)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(body, "end 101", "end x", 1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := read(path); err == nil {
		t.Fatal("a bad end line was accepted")
	}
}
