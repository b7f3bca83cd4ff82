package logs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type memDest struct {
	mu  sync.Mutex
	buf bytes.Buffer
	err error
}

func (m *memDest) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	return m.buf.Write(p)
}

func TestLinesJoinedAndPrefixed(t *testing.T) {
	d := &memDest{}
	r := NewRing()
	s := &Sink{Name: "web", Ring: r, Prefix: true, Dest: func(int) Dest { return d }, Drops: NewDrops()}
	w := s.Open(2, 100)
	for _, chunk := range []string{"hel", "lo\nwor", "ld\n", "a\nb\nc", "\n", "tail"} {
		w.Write([]byte(chunk))
	}
	w.Close()
	want := "web.2 | hello\nweb.2 | world\nweb.2 | a\nweb.2 | b\nweb.2 | c\nweb.2 | tail\n"
	if got := d.buf.String(); got != want {
		t.Fatalf("dest = %q, want %q", got, want)
	}
	tail, _ := r.Tail(2, -1)
	if string(tail) != "web.2 | c\nweb.2 | tail\n" {
		t.Fatalf("tail = %q", tail)
	}
}

func TestTimePrefix(t *testing.T) {
	d := &memDest{}
	s := &Sink{Name: "w", Dest: func(int) Dest { return d }, TimeLayout: Layout("%Y-%m-%d"), Drops: NewDrops()}
	w := s.Open(1, 1)
	w.Write([]byte("x\n"))
	if want := time.Now().Format("2006-01-02") + " x\n"; d.buf.String() != want {
		t.Fatalf("got %q want %q", d.buf.String(), want)
	}
}

func TestLayout(t *testing.T) {
	for in, want := range map[string]string{
		"%Y/%m/%d | %H:%M:%S": "2006/01/02 | 15:04:05",
		"2006-01-02T15:04:05": "2006-01-02T15:04:05",
		"%F %T %%":            "2006-01-02 15:04:05 %",
	} {
		if got := Layout(in); got != want {
			t.Errorf("Layout(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDropsCountedWhenDestFails(t *testing.T) {
	d := &memDest{err: errors.New("no space left on device")}
	drops := NewDrops()
	s := &Sink{Name: "w", Dest: func(int) Dest { return d }, Drops: drops, Ring: NewRing()}
	w := s.Open(1, 42)
	w.Write([]byte("0123456789\nabc\n"))
	if got := drops.Dropped(42); got != 15 {
		t.Fatalf("dropped = %d, want 15", got)
	}
	// The ring still has the lines: `logs` works even when the disk is full.
	if tail, _ := s.Ring.Tail(10, -1); string(tail) != "w.1 | 0123456789\nw.1 | abc\n" {
		t.Fatalf("ring = %q", tail)
	}
	w.Close()
	if got := drops.Dropped(42); got != 0 {
		t.Fatalf("counter not released after close: %d", got)
	}
}

func TestRingOverwriteAndFollow(t *testing.T) {
	r := NewRing()
	_, cur := r.Tail(0, -1)
	for c := 0; c < 400; c++ {
		var chunk bytes.Buffer
		for i := c * 100; i < (c+1)*100; i++ {
			fmt.Fprintf(&chunk, "line %06d\n", i)
		}
		r.appendLines(Stdout, []byte("p | "), chunk.Bytes())
	}
	data, next, lost, _, _ := r.Since(cur, -1)
	if lost == 0 || next != r.end {
		t.Fatalf("lost = %d next = %d", lost, next)
	}
	if !strings.HasSuffix(string(data), "p | line 039999\n") || !strings.HasPrefix(string(data), "p | line ") {
		t.Fatalf("since = ...%q", data[len(data)-30:])
	}
	if n := bytes.Count(data, []byte("\n")); n > RingSize/len("line 000000\n") || strings.HasPrefix(string(data), "p | line 000000\n") {
		t.Fatalf("ring kept %d lines from the start: nothing was overwritten", n)
	}
	r.appendLines(Stderr, []byte("p | "), []byte("err1\n"))
	r.appendLines(Stdout, []byte("p | "), []byte("out1\n"))
	if tail, _ := r.Tail(3, -1); string(tail) != "p | line 039999\np | err1\np | out1\n" {
		t.Fatalf("mixed tail = %q", tail)
	}
	if tail, _ := r.Tail(1, Stderr); string(tail) != "p | err1\n" {
		t.Fatalf("stderr tail = %q", tail)
	}
	data, cur2, _, more, closed := r.Since(next, Stdout)
	if string(data) != "p | out1\n" || closed {
		t.Fatalf("since stdout = %q closed=%v", data, closed)
	}
	go r.appendLines(Stdout, []byte("p | "), []byte("later\n"))
	select {
	case <-more:
	case <-time.After(20 * time.Second): // never, when not woken
		t.Fatal("follower not woken")
	}
	if data, _, _, _, _ := r.Since(cur2, -1); string(data) != "p | later\n" {
		t.Fatalf("later = %q", data)
	}
	r.Close()
	if _, _, _, _, closed := r.Since(cur2, -1); !closed {
		t.Fatal("not closed")
	}
}

func TestUnterminatedFloodIsBounded(t *testing.T) {
	d := &memDest{}
	s := &Sink{Name: "w", Dest: func(int) Dest { return d }, Drops: NewDrops()}
	w := s.Open(1, 1).(*procWriter)
	chunk := bytes.Repeat([]byte("x"), 4096)
	for i := 0; i < 1000; i++ {
		w.Write(chunk)
	}
	if cap(w.partial) > 5*maxPartial {
		t.Fatalf("partial grew to %d", cap(w.partial))
	}
	if d.buf.Len() < 4000000 {
		t.Fatalf("only %d bytes emitted", d.buf.Len())
	}
}

func TestNextRotation(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 30, 15, 0, time.UTC)
	for _, c := range []struct {
		when string
		n    int
		want time.Time
	}{
		{"S", 5, time.Date(2026, 11, 23, 10, 30, 20, 0, time.UTC)},
		{"H", 1, time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)},
		{"midnight", 1, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{"W0", 1, time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
	} {
		if got := NextRotation(now, c.when, c.n); !got.Equal(c.want) {
			t.Errorf("%s/%d: %s, want %s", c.when, c.n, got, c.want)
		}
	}
}

// partialDest keeps the first keep bytes of a write and fails (a full
// disk cut back to whole lines by Rotating).
type partialDest struct {
	memDest
	keep int
}

func (p *partialDest) Write(b []byte) (int, error) {
	n := min(p.keep, len(b))
	p.buf.Write(b[:n])
	return n, errors.New("no space left on device")
}

// Only what the destination did not keep counts as dropped.
func TestDropsCountOnlyWhatWasLost(t *testing.T) {
	d := &partialDest{keep: 11}
	drops := NewDrops()
	s := &Sink{Name: "w", Dest: func(int) Dest { return d }, Drops: drops}
	w := s.Open(1, 7)
	defer w.Close()
	w.Write([]byte("0123456789\nabc\nde\n"))
	if got := drops.Dropped(7); got != 7 {
		t.Fatalf("dropped = %d, want 7 (the two lines not kept)", got)
	}
}
