package watcher

import (
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// attachOutput gives the child a pipe for each stream that has a sink
// (/dev/null otherwise). It returns the parent's read ends and the
// child's write ends, which the caller closes once the child started.
func attachOutput(cmd *exec.Cmd, spec Spec) (readers, writers []*os.File, err error) {
	for _, pair := range []struct {
		sink Sink
		dst  *io.Writer
	}{{spec.Stdout, &cmd.Stdout}, {spec.Stderr, &cmd.Stderr}} {
		if pair.sink == nil {
			continue
		}
		r, w, perr := outputPipe()
		if perr != nil {
			for _, f := range append(readers, writers...) {
				f.Close()
			}
			return nil, nil, perr
		}
		*pair.dst = w // an *os.File: the child gets it directly, no copying goroutine
		readers = append(readers, r)
		writers = append(writers, w)
	}
	return readers, writers, nil
}

// startPumps copies each read end to its sink until EOF; wg tracks them.
// With a tap (ready.log), the lines also go to the process's prober.
func startPumps(wg *sync.WaitGroup, readers []*os.File, spec Spec, wid, pid int, tap *lineTap) {
	kinds := []int{}
	if spec.Stdout != nil {
		kinds = append(kinds, streamStdout)
	}
	if spec.Stderr != nil {
		kinds = append(kinds, streamStderr)
	}
	for i, r := range readers {
		sink := spec.Stdout
		if kinds[i] == streamStderr {
			sink = spec.Stderr
		}
		out := sink.Open(wid, pid)
		if tap != nil {
			out = &tapWriter{WriteCloser: out, tap: tap}
		}
		runPump(wg, &pumpHandle{r: r, out: out, kind: kinds[i], wid: wid, pid: pid})
	}
}

// Stream kinds of a pump.
const (
	streamStdout = 0
	streamStderr = 1
)

// pumpHandle is one running pump: a pipe's read end and its writer. A
// live upgrade stops every pump between two reads (stopPumps), so the
// bytes not read yet stay in the pipe for the next circled, and the
// writer's unterminated line is handed over with the descriptor.
type pumpHandle struct {
	r        *os.File
	out      io.WriteCloser
	kind     int
	wid, pid int
	stop     atomic.Bool
	done     chan struct{} // closed when the pump has returned
	stopped  bool          // it returned because of stop: r and out are still open
}

// pumpSets lists the running pumps of each watcher, by the watcher's
// pumps WaitGroup.
var (
	pumpMu   sync.Mutex
	pumpSets = map[*sync.WaitGroup]map[*pumpHandle]struct{}{}
)

// runPump starts h's goroutine.
func runPump(wg *sync.WaitGroup, h *pumpHandle) {
	h.done = make(chan struct{})
	h.stop.Store(false)
	pumpMu.Lock()
	set := pumpSets[wg]
	if set == nil {
		set = map[*pumpHandle]struct{}{}
		pumpSets[wg] = set
	}
	set[h] = struct{}{}
	pumpMu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(h.done)
		h.stopped = pumpStop(h.r, h.out, &h.stop)
		if !h.stopped {
			pumpMu.Lock()
			delete(pumpSets[wg], h)
			if len(pumpSets[wg]) == 0 {
				delete(pumpSets, wg)
			}
			pumpMu.Unlock()
		}
	}()
}

// stopPumps stops every pump of wg's watcher at a read boundary and
// returns those that stopped with their pipe open (the others reached
// EOF meanwhile and are gone).
func stopPumps(wg *sync.WaitGroup) []*pumpHandle { return waitPumps(signalPumps(wg)) }

// signalPumps tells every pump of wg's watcher to stop at its next read
// boundary and returns them, without waiting (waitPumps waits): a live
// upgrade tells every watcher's pumps first, then waits for them all, so
// the stall is the slowest pump's, not their sum.
func signalPumps(wg *sync.WaitGroup) []*pumpHandle {
	pumpMu.Lock()
	var hs []*pumpHandle
	for h := range pumpSets[wg] {
		hs = append(hs, h)
	}
	pumpMu.Unlock()
	for _, h := range hs {
		h.stop.Store(true)
		h.r.SetReadDeadline(time.Now()) // wakes a pump waiting in the poller
	}
	return hs
}

// waitPumps waits for the pumps signalPumps told to stop and returns
// those that stopped with their pipe open.
func waitPumps(hs []*pumpHandle) []*pumpHandle {
	var out []*pumpHandle
	for _, h := range hs {
		<-h.done
		if h.stopped {
			out = append(out, h)
		}
	}
	return out
}

// partialLine returns the unterminated line h's writer holds.
func (h *pumpHandle) partialLine() []byte {
	out := h.out
	if t, ok := out.(*tapWriter); ok {
		out = t.WriteCloser
	}
	if p, ok := out.(interface{ Partial() []byte }); ok {
		return p.Partial()
	}
	return nil
}

// bufPool holds read buffers; a pump takes one only while data is ready,
// so thousands of idle children cost no buffer memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
