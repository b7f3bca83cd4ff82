package watcher

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// collect is a WriteCloser that keeps everything written to it.
type collect struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (c *collect) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *collect) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// A writer that floods in blocks just under 64 KiB (what a child writing
// 655 lines of 100 bytes at a time does) makes the pump hot: the pipe is
// enlarged to 1 MiB, so the child no longer blocks on every block, and
// every byte arrives once, in order, through the switches between the
// poller and blocking reads.
func TestPumpFloodEnlargesPipeAndKeepsOrder(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &collect{}
	done := make(chan struct{})
	go func() { pump(r, out); close(done) }()

	var want bytes.Buffer
	line := 0
	block := func(lines int) []byte {
		var b bytes.Buffer
		for range lines {
			fmt.Fprintf(&b, "%09d %s\n", line, bytes.Repeat([]byte{'x'}, 89))
			line++
		}
		want.Write(b.Bytes())
		return b.Bytes()
	}
	pipeSize := func() int {
		n, _ := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
		return n
	}
	if n := pipeSize(); n >= 1<<20 {
		t.Fatalf("pipe starts at %d bytes", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for pipeSize() < 1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("pipe still %d bytes after a 20 s flood", pipeSize())
		}
		if _, err := w.Write(block(655)); err != nil { // 65500 bytes
			t.Fatal(err)
		}
	}
	// A trickle (cold again after a window), then another flood.
	for range 20 {
		w.Write(block(1))
		time.Sleep(10 * time.Millisecond) // pacing the writer, not synchronisation
	}
	for range 200 {
		w.Write(block(655))
	}
	w.Write([]byte("unterminated"))
	want.WriteString("unterminated")
	w.Close()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("pump did not end at EOF")
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if !out.closed {
		t.Fatal("destination not closed at EOF")
	}
	if !bytes.Equal(out.buf.Bytes(), want.Bytes()) {
		t.Fatalf("got %d bytes, want %d (or different bytes)", out.buf.Len(), want.Len())
	}
}
