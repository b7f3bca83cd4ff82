package evlistener

import (
	"slices"
	"strconv"
	"time"
)

// retickLocked runs one timer goroutine for the TICK_* periods some pool
// subscribes to, and none when no pool does: circled stays at zero
// wake-ups without tick subscribers.
func (b *Bus) retickLocked() {
	var need []int
	if !b.closed && !b.frozen {
		for _, period := range TickPeriods {
			name := "TICK_" + strconv.Itoa(period)
			for _, p := range b.pools {
				if p.wants(name) {
					need = append(need, period)
					break
				}
			}
		}
	}
	if slices.Equal(need, b.tickPeriods) {
		return
	}
	if b.tickStop != nil {
		close(b.tickStop)
		b.tickStop = nil
	}
	b.tickPeriods = need
	if len(need) > 0 {
		stop := make(chan struct{})
		b.tickStop = stop
		b.tickDone.Add(1)
		go b.tickLoop(need, stop)
	}
}

// tickLoop publishes TICK_<period> each time the wall clock crosses a
// multiple of period seconds, with when = that multiple, as supervisord
// does (no tick at start: the first is at the first boundary). It sleeps
// until the next boundary, so it wakes once per smallest period.
//
// The last boundary published for each period is kept in b.tickLast: a
// loop started again after a live upgrade's freeze (or in the binary
// that took over) publishes a boundary crossed meanwhile at once.
func (b *Bus) tickLoop(periods []int, stop <-chan struct{}) {
	defer b.tickDone.Done()
	now := time.Now()
	last := make([]int64, len(periods))
	b.mu.Lock()
	for i, period := range periods {
		last[i] = timeslice(period, now)
		if l, ok := b.tickLast[period]; ok && l < last[i] && last[i]-l <= int64(period) {
			last[i] = l // one boundary was crossed while no loop ran
		}
	}
	b.mu.Unlock()
	var t *time.Timer
	for {
		next := last[0] + int64(periods[0])
		for i, period := range periods[1:] {
			next = min(next, last[i+1]+int64(period))
		}
		if d := time.Until(time.Unix(next, 0)); t == nil {
			t = time.NewTimer(d)
			defer t.Stop()
		} else {
			t.Reset(d)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now = time.Now()
		for i, period := range periods {
			if s := timeslice(period, now); s != last[i] {
				last[i] = s
				b.publishTick(period, s)
			}
		}
	}
}

// publishTick publishes TICK_<period> for the boundary s and records it
// (b.tickLast), unless the loop was stopped meanwhile (a freeze).
func (b *Bus) publishTick(period int, s int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.frozen {
		return
	}
	if b.tickLast == nil {
		b.tickLast = map[int]int64{}
	}
	b.tickLast[period] = s
	b.publishLocked(Event{Name: "TICK_" + strconv.Itoa(period), Payload: "when:" + strconv.FormatInt(s, 10)})
}
