// Package logs captures watchers' output: it splits each process's
// stream into whole lines, writes them to the stream's destination
// (circled's stdout/stderr with a "NAME.WID | " prefix, a rotated file,
// or nowhere), keeps the last lines of every watcher in a fixed-size
// in-memory ring for `circlectl logs`, and counts what a failing
// destination dropped. Nothing here blocks a child on a slow reader of
// the ring, and nothing allocates per line.
package logs

import (
	"encoding/binary"
	"sync"
)

// Stream numbers in the ring.
const (
	Stdout = 0
	Stderr = 1
)

// RingSize is the bytes of output kept per watcher.
const RingSize = 256 << 10

const (
	hdrSize    = 4
	streamBit  = 1 << 31
	maxPayload = RingSize / 8
)

// Ring is a fixed-size circular log of records (one line each). Offsets
// are monotonic byte counts; the buffer holds [start, end).
type Ring struct {
	mu     sync.Mutex
	buf    []byte
	end    uint64 // offset after the newest record
	start  uint64 // offset of the oldest complete record
	closed bool
	wake   chan struct{} // closed on append; nil when nobody waits
}

// NewRing makes an empty ring.
func NewRing() *Ring { return &Ring{buf: make([]byte, RingSize)} }

func (r *Ring) put(off uint64, p []byte) {
	i := int(off % RingSize)
	n := copy(r.buf[i:], p)
	copy(r.buf, p[n:])
}

func (r *Ring) get(off uint64, p []byte) {
	i := int(off % RingSize)
	n := copy(p, r.buf[i:])
	copy(p[n:], r.buf)
}

func (r *Ring) header(off uint64) (stream int, n int) {
	var h [hdrSize]byte
	r.get(off, h[:])
	v := binary.LittleEndian.Uint32(h[:])
	if v&streamBit != 0 {
		stream = Stderr
	}
	return stream, int(v &^ streamBit)
}

// appendLines adds one record per line of lines (complete lines, each
// ending in '\n'), each prefixed with prefix. Called with whole chunks so
// the lock is taken once per read from the child, not once per line.
func (r *Ring) appendLines(stream int, prefix, lines []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for len(lines) > 0 {
		i := indexNL(lines)
		line := lines[:i+1]
		lines = lines[i+1:]
		r.appendRecord(stream, prefix, line)
	}
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

func (r *Ring) appendRecord(stream int, prefix, line []byte) {
	n := len(prefix) + len(line)
	if n > maxPayload { // keep the start of an enormous line and its newline
		line = append(line[:maxPayload-len(prefix)-1:maxPayload-len(prefix)-1], '\n')
		n = maxPayload
	}
	need := uint64(hdrSize + n)
	for r.end+need-r.start > RingSize {
		_, m := r.header(r.start)
		r.start += uint64(hdrSize + m)
	}
	v := uint32(n)
	if stream == Stderr {
		v |= streamBit
	}
	var h [hdrSize]byte
	binary.LittleEndian.PutUint32(h[:], v)
	r.put(r.end, h[:])
	r.put(r.end+hdrSize, prefix)
	r.put(r.end+hdrSize+uint64(len(prefix)), line)
	r.end += need
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return len(b) - 1
}

// Tail returns the last n records of stream (-1 = both) and the cursor
// to follow from.
func (r *Ring) Tail(n, stream int) ([]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 {
		return nil, r.end
	}
	var offs []uint64
	for off := r.start; off < r.end; {
		s, m := r.header(off)
		if stream < 0 || s == stream {
			offs = append(offs, off)
		}
		off += uint64(hdrSize + m)
	}
	if len(offs) > n {
		offs = offs[len(offs)-n:]
	}
	return r.copyRecords(offs), r.end
}

func (r *Ring) copyRecords(offs []uint64) []byte {
	var out []byte
	for _, off := range offs {
		_, m := r.header(off)
		l := len(out)
		out = append(out, make([]byte, m)...)
		r.get(off+hdrSize, out[l:])
	}
	return out
}

// Since returns the records of stream (-1 = both) after cursor, the new
// cursor, how many bytes were overwritten before they could be read,
// a channel closed when more arrives, and whether the ring is closed.
func (r *Ring) Since(cursor uint64, stream int) (data []byte, next uint64, lost uint64, more <-chan struct{}, closed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cursor < r.start {
		lost = r.start - cursor
		cursor = r.start
	}
	var offs []uint64
	for off := cursor; off < r.end; {
		s, m := r.header(off)
		if stream < 0 || s == stream {
			offs = append(offs, off)
		}
		off += uint64(hdrSize + m)
	}
	if r.wake == nil && !r.closed {
		r.wake = make(chan struct{})
	}
	return r.copyRecords(offs), r.end, lost, r.wake, r.closed
}

// Close ends every follower (the watcher was removed or circled stops).
func (r *Ring) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}
