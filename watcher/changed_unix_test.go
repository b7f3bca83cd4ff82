//go:build unix

package watcher

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// digestOf is what Digest must say of st: its state and error, and per
// wid the first entry Status lists (the slot; draining processes follow).
func digestOf(st Status) Digest {
	d := Digest{State: st.State, Error: st.Error}
	seen := map[int]bool{}
	for _, p := range st.Processes {
		if seen[p.WID] {
			continue
		}
		seen[p.WID] = true
		d.Slots = append(d.Slots, SlotDigest{WID: p.WID, PID: p.PID, Ready: p.Ready, Health: p.Health, Error: p.Error,
			Restarts: p.Restarts, PlannedRestarts: p.PlannedRestarts})
	}
	return d
}

// Digest lists the same slots as Status, with the same fields, through
// a start, a crash and its restart, a restart asked for, and a stop (the
// observer of events and restart counts reads Digest instead of Status).
func TestDigestMatchesStatus(t *testing.T) {
	spec := testSpec(t, "digest", "sleep", 4)
	spec.Policy.MinUptime = 0
	w := startWatcher(t, spec)
	var d Digest
	check := func(when string) {
		t.Helper()
		// Two reads of a live watcher can differ (a process may become
		// ready between them): retry until one pair agrees.
		testhelper.Poll(t, 20*time.Second, "digest = status "+when, func() (bool, string) {
			st := w.Status()
			if !w.Digest(&d) {
				return false, "Digest: watcher closed"
			}
			want := digestOf(st)
			got := fmt.Sprintf("%+v", d)
			return got == fmt.Sprintf("%+v", want), "digest " + got + "\nstatus " + fmt.Sprintf("%+v", want)
		})
	}
	check("after start")
	st := w.Status()
	victim := st.Processes[1]
	syscall.Kill(victim.PID, syscall.SIGKILL)
	testhelper.Poll(t, 20*time.Second, "the killed slot restarted", func() (bool, string) {
		for _, p := range w.Status().Processes {
			if p.WID == victim.WID {
				return p.PID != 0 && p.PID != victim.PID && p.Restarts == 1, fmt.Sprintf("%+v", p)
			}
		}
		return false, "slot gone"
	})
	check("after a crash")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := restart(w)(ctx, true); err != nil {
		t.Fatal(err)
	}
	check("after a restart")
	if err := w.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	check("after a stop")
	if w.Digest(&d) && len(d.Slots) == 0 {
		t.Fatalf("a stopped watcher's digest lists no slot; its status lists %d", len(w.Status().Processes))
	}
}
