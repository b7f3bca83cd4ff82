package logs

// Live upgrade (issue 19): a stream's unterminated line and a watcher's
// ring are handed to the next circled.

// Partial returns the unterminated line the writer holds (a copy). Call
// it only while no Write runs (the pump has stopped).
func (w *procWriter) Partial() []byte {
	return append([]byte(nil), w.partial...)
}

// SetPartial makes p the start of the writer's next line: the
// unterminated line the previous circled's writer held. Call it before
// the first Write.
func (w *procWriter) SetPartial(p []byte) {
	w.partial = append(w.partial[:0], p...)
}

// RingState is a ring's content: the bytes of its records from offset
// Start on, in order.
type RingState struct {
	Start uint64 `json:"start"`
	Data  []byte `json:"data"`
}

// Export copies the ring's records.
func (r *Ring) Export() RingState {
	r.mu.Lock()
	defer r.mu.Unlock()
	data := make([]byte, r.end-r.start)
	r.get(r.start, data)
	return RingState{Start: r.start, Data: data}
}

// RestoreRing makes a ring holding st's records (Export's), at the same
// offsets.
func RestoreRing(st RingState) *Ring {
	r := NewRing()
	if len(st.Data) > RingSize {
		return r // not a ring's export
	}
	r.start = st.Start
	r.end = st.Start + uint64(len(st.Data))
	r.put(r.start, st.Data)
	return r
}
