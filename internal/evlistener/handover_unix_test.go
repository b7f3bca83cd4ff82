//go:build unix

package evlistener

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// handOver freezes b, round-trips its state through JSON and gives it
// to a new bus as the new binary would: the listeners' input
// descriptors are duplicated (the exec keeps the numbers; here the old
// bus closes its own, as the exec ends it), and every pool is made
// again and restored.
func handOver(t *testing.T, b *Bus, names map[string][]string) (*Bus, map[string]*Pool, BusState) {
	t.Helper()
	st, files, err := b.Freeze(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ps := range st.Pools {
		n += len(ps.Listeners)
	}
	if len(files) != n {
		t.Fatalf("%d descriptors for %d listeners", len(files), n)
	}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var st2 BusState
	if err := json.Unmarshal(data, &st2); err != nil {
		t.Fatal(err)
	}
	for i := range st2.Pools {
		for j := range st2.Pools[i].Listeners {
			l := &st2.Pools[i].Listeners[j]
			fd, err := syscall.Dup(l.FD)
			if err != nil {
				t.Fatal(err)
			}
			syscall.CloseOnExec(fd)
			l.FD = fd
		}
	}
	b.Close() // the old binary is gone: its descriptors with it
	nb := NewBusFrom("", &st2)
	t.Cleanup(nb.Close)
	pools := map[string]*Pool{}
	for _, ps := range st2.Pools {
		p, _ := newPool(t, nb, ps.Name, 10, names[ps.Name]...)
		if err := p.Restore(ps); err != nil {
			t.Fatal(err)
		}
		pools[ps.Name] = p
	}
	return nb, pools, *st
}

// A listener BUSY at the hand-over, half-way through its RESULT, with
// events buffered behind it: the new bus reads the rest of its answer,
// sends the buffered events in order and numbers new ones after them.
func TestHandOverBusyListener(t *testing.T) {
	b := NewBus("")
	p, _ := newPool(t, b, "crash", 10, "PROCESS_STATE")
	f := newFake(t, p, 1, 100)
	f.say("READY\n")
	b.Publish(exited("web", 41))
	h, _ := f.event()
	if h["serial"] != "0" || h["poolserial"] != "0" {
		t.Fatalf("first event %v", h)
	}
	f.say("RESULT 2\nO") // half of it
	b.Publish(exited("web", 42))
	b.Publish(exited("web", 43))

	nb, pools, st := handOver(t, b, map[string][]string{"crash": {"PROCESS_STATE"}})
	if len(st.Pools) != 1 || len(st.Pools[0].Listeners) != 1 {
		t.Fatalf("state %+v", st)
	}
	ls := st.Pools[0].Listeners[0]
	if ls.State != Busy || ls.Inflight == nil || ls.Inflight.Serial != 0 || ls.ResultLen != 2 || string(ls.Result) != "O" || ls.PID != 100 || ls.WID != 1 {
		t.Errorf("listener state %+v", ls)
	}
	if len(st.Pools[0].Buffer) != 2 || st.Serial != 2 || st.Pools[0].Serial != 2 {
		t.Errorf("serial %d, pool serial %d, buffer %+v", st.Serial, st.Pools[0].Serial, st.Pools[0].Buffer)
	}
	p2 := pools["crash"]
	if s := p2.ListenerState(1); s != Busy {
		t.Fatalf("restored listener is %s, want BUSY", s)
	}
	// The adopted pump opens the sink again for the same process.
	f.out = p2.Stdout(nil).Open(1, 100)
	f.say("K")
	if s := p2.ListenerState(1); s != Acknowledged {
		t.Fatalf("after the rest of its OK: %s, want ACKNOWLEDGED", s)
	}
	f.nothing()
	for i, pid := range []int{42, 43} {
		f.say("READY\n")
		h, payload := f.event()
		if h["serial"] != strconv.Itoa(i+1) || h["poolserial"] != strconv.Itoa(i+1) || !bytes.Contains([]byte(payload), []byte("pid:"+strconv.Itoa(pid))) {
			t.Fatalf("event %d after the hand-over: %v %q", i, h, payload)
		}
		f.say("RESULT 2\nOK")
	}
	nb.Publish(exited("web", 44))
	f.say("READY\n")
	if h, _ := f.event(); h["serial"] != "3" || h["poolserial"] != "3" {
		t.Fatalf("a new event after the hand-over: %v, want serial 3", h)
	}
	if p2.Buffered() != 0 {
		t.Errorf("buffered %d", p2.Buffered())
	}
}

// An envelope larger than the pipe, cut by the freeze while the
// listener had not read it: the new bus writes the rest, so the listener
// reads it whole, once.
func TestHandOverCutEnvelope(t *testing.T) {
	b := NewBus("")
	p, _ := newPool(t, b, "logs", 10, "PROCESS_LOG")
	f := newFake(t, p, 1, 100)
	f.say("READY\n")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: more than a pipe holds
	b.Publish(ProcessLog("web", "web", 7, "stdout", data))
	_, _, st := handOver(t, b, map[string][]string{"logs": {"PROCESS_LOG"}})
	ls := st.Pools[0].Listeners[0]
	if ls.State != Busy || len(ls.Unwritten) == 0 {
		t.Fatalf("state %s, %d bytes unwritten: want BUSY with most of the envelope unwritten", ls.State, len(ls.Unwritten))
	}
	h, payload := f.event()
	if h["eventname"] != "PROCESS_LOG_STDOUT" || h["serial"] != "0" || !bytes.HasSuffix([]byte(payload), data) {
		t.Fatalf("header %v, payload of %d bytes (want it to end with the %d written)", h, len(payload), len(data))
	}
	f.nothing()
}

// An aborted upgrade (Thaw): what was published during the freeze is
// sent afterwards, a cut write is finished.
func TestFreezeThaw(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	p, _ := newPool(t, b, "crash", 10, "PROCESS_STATE", "PROCESS_LOG")
	f := newFake(t, p, 1, 100)
	f.say("READY\n")
	data := bytes.Repeat([]byte("x"), 1<<20)
	b.Publish(ProcessLog("web", "web", 7, "stdout", data))
	if _, _, err := b.Freeze(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The listener reads: the pipe's content, then nothing until Thaw.
	type envelope struct {
		header string
		n      int
		err    error
	}
	got := make(chan envelope, 1)
	go func() {
		f.in.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := f.r.ReadString('\n')
		if err != nil {
			got <- envelope{line, 0, err}
			return
		}
		h := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, ":")
			h[k] = v
		}
		n, _ := strconv.Atoi(h["len"])
		m, err := io.ReadFull(f.r, make([]byte, n)) // ASCII: len counts bytes
		got <- envelope{line, m, err}
	}()
	b.Publish(exited("web", 42)) // buffered, not sent
	select {
	case e := <-got:
		t.Fatalf("the envelope was read whole while frozen: %+v", e)
	case <-time.After(100 * time.Millisecond):
	}
	b.Thaw()
	e := <-got
	if e.err != nil || e.n < len(data) {
		t.Fatalf("the cut envelope after Thaw: %+v", e)
	}
	f.say("RESULT 2\nOK")
	f.say("READY\n")
	if h, _ := f.event(); h["serial"] != "1" || h["eventname"] != "PROCESS_STATE_EXITED" {
		t.Fatalf("the event published while frozen: %v", h)
	}
}

// The tracker's states go across: a process RUNNING before the
// hand-over is EXITED after it (not STARTING → BACKOFF), its tries kept.
func TestTrackerHandOver(t *testing.T) {
	tr := NewTracker()
	tr.Spawned("g", "a", 10)
	tr.Running("g", "a", 10)
	tr.Spawned("g", "b", 11)
	tr.Exited("g", "b", 11, false) // BACKOFF, tries 1
	tr.Spawned("g", "b", 12)
	data, err := json.Marshal(tr.Export())
	if err != nil {
		t.Fatal(err)
	}
	var st TrackerState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	nt := NewTrackerFrom(st)
	cs := nt.Exited("g", "a", 10, true)
	if len(cs) != 1 || cs[0].From != StateRunning || cs[0].To != StateExited || !cs[0].Expected || cs[0].PID != 10 {
		t.Fatalf("exit of a RUNNING process after the hand-over: %+v", cs)
	}
	cs = nt.Exited("g", "b", 12, false)
	if len(cs) != 1 || cs[0].From != StateStarting || cs[0].To != StateBackoff || cs[0].Tries != 2 {
		t.Fatalf("second failed start after the hand-over: %+v", cs)
	}
	if nt.PID("g", "a") != 0 || nt.State("g", "a") != StateExited {
		t.Fatalf("state %s pid %d", nt.State("g", "a"), nt.PID("g", "a"))
	}
}
