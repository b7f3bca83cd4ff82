//go:build unix

package watcher

import (
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// TestDigestWhileFrozen: a Digest does not wait for a frozen owner (it
// would wait until Thaw, or forever when the exec succeeds): it gives
// the digest taken at the freeze, also when its message was queued
// behind the freeze's (the observer's diff had begun just before it).
// The live upgrade relies on it to publish what changed just before the
// freeze (supervisor.PrepareUpgradeFor).
func TestDigestWhileFrozen(t *testing.T) {
	r := startRig(t, shSpec(t, "dig", "exec sleep 100"), true)
	var before Digest
	if !r.w1.Digest(&before) || len(before.Slots) != 1 || before.Slots[0].PID == 0 {
		t.Fatalf("digest before the freeze: %+v", before)
	}
	inbox := func() int {
		r.w1.o.inMu.Lock()
		defer r.w1.o.inMu.Unlock()
		return len(r.w1.o.inbox)
	}
	// The owner held by a first message; then a Freeze's message and a
	// Digest's, in that order.
	gate, running := make(chan struct{}), make(chan struct{})
	r.w1.post(func() {
		close(running)
		<-gate
	})
	<-running
	n0 := inbox()
	frozen := make(chan *Frozen, 1)
	go func() {
		f, err := r.w1.Freeze()
		if err != nil {
			t.Error(err)
		}
		frozen <- f
	}()
	testhelper.Poll(t, 20*time.Second, "the freeze queued", func() (bool, string) { return inbox() > n0, "" })
	got := make(chan Digest, 1)
	go func() {
		var d Digest
		if !r.w1.Digest(&d) {
			t.Error("Digest: the watcher is closed")
		}
		got <- d
	}()
	testhelper.Poll(t, 20*time.Second, "the digest queued behind the freeze", func() (bool, string) { return inbox() > n0+1, "" })
	close(gate)
	f := <-frozen
	if f == nil {
		return
	}
	defer f.Thaw()
	select {
	case d := <-got:
		if d.State != before.State || len(d.Slots) != 1 || d.Slots[0] != before.Slots[0] {
			t.Errorf("digest while frozen %+v, want %+v", d, before)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a Digest queued behind the freeze waits for the frozen owner")
	}
	// Called while frozen: at once as well.
	done := make(chan bool, 1)
	go func() {
		var d Digest
		done <- r.w1.Digest(&d) && len(d.Slots) == 1
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Error("digest while frozen: closed or empty")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Digest waits for the frozen owner")
	}
}
