package evlistener

import (
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// Ticks across a freeze and a hand-over: the bus records the last
// boundary published; none is published while frozen; Thaw, or the bus
// made from the handed-over state, publishes the boundary crossed
// meanwhile at once (not at the next one).
func TestTickHandOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at a multiple of 3600 s.
		base := time.Now().Unix()
		b := NewBus("")
		p, _ := newPool(t, b, "ticks", 100, "TICK_5")
		time.Sleep(6 * time.Second)
		synctest.Wait()
		want := []string{fmt.Sprintf("TICK_5 when:%d", base+5)}
		if got := buffered(p); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("before the freeze: %v, want %v", got, want)
		}
		st, _, err := b.Freeze(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ticks[5] != base+5 {
			t.Errorf("handed-over ticks %v, want 5: %d", st.Ticks, base+5)
		}
		time.Sleep(5 * time.Second) // past base+10, frozen
		synctest.Wait()
		if got := buffered(p); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("a tick while frozen: %v", got)
		}
		b.Thaw()
		synctest.Wait()
		want = append(want, fmt.Sprintf("TICK_5 when:%d", base+10))
		if got := buffered(p); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after Thaw: %v, want %v", got, want)
		}
		st, _, err = b.Freeze(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second) // past base+15: the exec
		b.Close()
		nb := NewBusFrom("", st)
		defer nb.Close()
		np, _ := newPool(t, nb, "ticks", 100, "TICK_5")
		if err := np.Restore(st.Pools[0]); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		want = append(want, fmt.Sprintf("TICK_5 when:%d", base+15))
		if got := buffered(np); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("the new bus: %v, want %v", got, want)
		}
		nb.Close()
		synctest.Wait()
	})
}

// partialTee is a log writer holding an unterminated line (as
// supervisor/logs' procWriter).
type partialTee struct{ partial []byte }

func (w *partialTee) Open(wid, pid int) io.WriteCloser { return w }
func (w *partialTee) Write(b []byte) (int, error)      { return len(b), nil }
func (w *partialTee) Close() error                     { return nil }
func (w *partialTee) Partial() []byte                  { return w.partial }
func (w *partialTee) SetPartial(b []byte)              { w.partial = b }

// A listener's stdout writer hands over its log's unterminated line
// (the watcher's pump asks the writer it has: the pool's).
func TestStdoutPartialLine(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "x", 10, "PROCESS_STATE")
	newFake(t, p, 1, 100)
	tee := &partialTee{partial: []byte("half a li")}
	w := p.Stdout(tee).Open(1, 100)
	pw, ok := w.(interface {
		Partial() []byte
		SetPartial([]byte)
	})
	if !ok {
		t.Fatalf("%T has no Partial/SetPartial", w)
	}
	if got := string(pw.Partial()); got != "half a li" {
		t.Errorf("Partial %q", got)
	}
	pw.SetPartial([]byte("other"))
	if string(tee.partial) != "other" {
		t.Errorf("SetPartial gave the log %q", tee.partial)
	}
	if got := p.Stdout(nil).Open(1, 100).(interface{ Partial() []byte }).Partial(); got != nil {
		t.Errorf("without a log: Partial %q", got)
	}
}
