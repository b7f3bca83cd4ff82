package evlistener

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func buffered(p *Pool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, q := range p.buf {
		out = append(out, q.ev.Name+" "+q.ev.Payload)
	}
	return out
}

// Ticks fall on period boundaries of the wall clock (when = the
// boundary), none at start, TICK_5 before TICK_60 when both are due; the
// timer exists only while a pool subscribes to a tick.
func TestTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at 2000-01-01 00:00:00 UTC (a
		// multiple of 3600); start 2s past it.
		time.Sleep(2 * time.Second)
		start := time.Now().Unix()
		b := NewBus("")
		defer b.Close()
		ps, _ := newPool(t, b, "state", 100, "PROCESS_STATE")
		if b.tickStop != nil {
			t.Fatal("a tick timer runs with no pool subscribed to ticks")
		}
		p, _ := newPool(t, b, "ticks", 100, "TICK_5", "TICK_60")
		time.Sleep(61 * time.Second) // to start+61 = boundary 60 + 3
		synctest.Wait()
		got := buffered(p)
		var want []string
		for s := start - 2 + 5; s <= start-2+60; s += 5 {
			want = append(want, fmt.Sprintf("TICK_5 when:%d", s))
		}
		want = append(want, fmt.Sprintf("TICK_60 when:%d", start-2+60))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ticks\n%v\nwant\n%v", got, want)
		}
		if len(buffered(ps)) != 0 {
			t.Errorf("the PROCESS_STATE pool got %v", buffered(ps))
		}
		// TICK (abstract) and EVENT want every period.
		pe, _ := newPool(t, b, "all", 100, "EVENT")
		if fmt.Sprint(b.tickPeriods) != "[5 60 3600]" {
			t.Errorf("with an EVENT pool, tick periods %v", b.tickPeriods)
		}
		pe.Close()
		p.Close()
		if b.tickStop != nil || b.tickPeriods != nil {
			t.Error("the tick timer still runs after its pools closed")
		}
		synctest.Wait() // the timer goroutine has ended (the bubble checks it at the end)
	})
}

// Only TICK_3600: one wake-up an hour, at the hour.
func TestTick3600(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBus("")
		defer b.Close()
		p, _ := newPool(t, b, "hourly", 100, "TICK_3600")
		h := time.Now().Unix()
		time.Sleep(2*time.Hour + time.Second)
		synctest.Wait()
		want := fmt.Sprint([]string{fmt.Sprintf("TICK_3600 when:%d", h+3600), fmt.Sprintf("TICK_3600 when:%d", h+7200)})
		if got := fmt.Sprint(buffered(p)); got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}
