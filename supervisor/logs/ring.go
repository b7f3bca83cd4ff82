package logs

import (
	"bytes"
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

// A record is one block of whole lines from one process stream:
// [u32 total length | stream bit][u16 prefix length][prefix][lines].
const (
	hdrSize   = 6
	streamBit = 1 << 31
	// maxBlock bounds a record: a bigger block keeps only its last lines.
	maxBlock = RingSize / 4
)

// Ring is a fixed-size circular log of records. Offsets are monotonic
// byte counts; the buffer holds the records in [start, end).
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

type recHdr struct {
	stream  int
	total   int // payload bytes after the header: prefix + lines
	prefixN int
}

func (r *Ring) header(off uint64) recHdr {
	var h [hdrSize]byte
	r.get(off, h[:])
	v := binary.LittleEndian.Uint32(h[:4])
	rh := recHdr{total: int(v &^ streamBit), prefixN: int(binary.LittleEndian.Uint16(h[4:]))}
	if v&streamBit != 0 {
		rh.stream = Stderr
	}
	return rh
}

// appendLines adds lines (complete lines, each ending in '\n') of one
// process stream as one record.
func (r *Ring) appendLines(stream int, prefix, lines []byte) {
	if len(lines)+len(prefix) > maxBlock {
		cut := len(lines) - (maxBlock - len(prefix))
		if i := bytes.IndexByte(lines[cut:], '\n'); i >= 0 && cut+i+1 < len(lines) {
			lines = lines[cut+i+1:]
		} else {
			lines = lines[cut:]
		}
	}
	total := len(prefix) + len(lines)
	need := uint64(hdrSize + total)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for r.end+need-r.start > RingSize {
		r.start += uint64(hdrSize + r.header(r.start).total)
	}
	v := uint32(total)
	if stream == Stderr {
		v |= streamBit
	}
	var h [hdrSize]byte
	binary.LittleEndian.PutUint32(h[:4], v)
	binary.LittleEndian.PutUint16(h[4:], uint16(len(prefix)))
	r.put(r.end, h[:])
	r.put(r.end+hdrSize, prefix)
	r.put(r.end+hdrSize+uint64(len(prefix)), lines)
	r.end += need
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

// records lists the offsets of the records of stream (-1 = both) in
// [from, end).
func (r *Ring) records(from uint64, stream int) []uint64 {
	var offs []uint64
	for off := from; off < r.end; {
		h := r.header(off)
		if stream < 0 || h.stream == stream {
			offs = append(offs, off)
		}
		off += uint64(hdrSize + h.total)
	}
	return offs
}

// render appends the lines of the record at off, each with its prefix,
// skipping the first skip lines.
func (r *Ring) render(out []byte, off uint64, skip int) []byte {
	h := r.header(off)
	payload := make([]byte, h.total)
	r.get(off+hdrSize, payload)
	prefix, lines := payload[:h.prefixN], payload[h.prefixN:]
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		if skip > 0 {
			skip--
		} else {
			out = append(out, prefix...)
			out = append(out, lines[:i+1]...)
		}
		lines = lines[i+1:]
	}
	return out
}

func (r *Ring) lineCount(off uint64) int {
	h := r.header(off)
	payload := make([]byte, h.total-h.prefixN)
	r.get(off+hdrSize+uint64(h.prefixN), payload)
	return bytes.Count(payload, []byte{'\n'})
}

// Tail returns the last n lines of stream (-1 = both), each with its
// "NAME.WID | " prefix, and the cursor to follow from.
func (r *Ring) Tail(n, stream int) ([]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 {
		return nil, r.end
	}
	offs := r.records(r.start, stream)
	first, skip := len(offs), 0
	for have := 0; first > 0 && have < n; {
		first--
		c := r.lineCount(offs[first])
		if have+c > n {
			skip = have + c - n
		}
		have += c
	}
	var out []byte
	for i, off := range offs[first:] {
		if i == 0 {
			out = r.render(out, off, skip)
		} else {
			out = r.render(out, off, 0)
		}
	}
	return out, r.end
}

// Since returns the lines of stream (-1 = both) after cursor, the new
// cursor, how many bytes were overwritten before they could be read, a
// channel closed when more arrives, and whether the ring is closed.
func (r *Ring) Since(cursor uint64, stream int) (data []byte, next uint64, lost uint64, more <-chan struct{}, closed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cursor < r.start {
		lost = r.start - cursor
		cursor = r.start
	}
	for _, off := range r.records(cursor, stream) {
		data = r.render(data, off, 0)
	}
	if r.wake == nil && !r.closed {
		r.wake = make(chan struct{})
	}
	return data, r.end, lost, r.wake, r.closed
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
