package logs

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"
)

// benchChunks is 1 MiB of 100-byte numbered lines cut into reads of
// 64 KiB, the pump's buffer size, so lines straddle reads as they do
// in production.
func benchChunks() [][]byte {
	var all bytes.Buffer
	for i := 0; all.Len() < 1<<20; i++ {
		line := make([]byte, 0, 100)
		line = append(line, "line "...)
		for j := len(line); j < 99; j++ {
			line = append(line, byte('a'+(i+j)%26))
		}
		all.Write(append(line, '\n'))
	}
	data := all.Bytes()
	var chunks [][]byte
	for len(data) > 0 {
		n := min(64<<10, len(data))
		chunks = append(chunks, data[:n])
		data = data[n:]
	}
	return chunks
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func benchSink(b *testing.B, s *Sink) {
	chunks := benchChunks()
	total := 0
	for _, c := range chunks {
		total += len(c)
	}
	w := s.Open(1, 100)
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			w.Write(c)
		}
	}
	w.Close()
}

// BenchmarkSplitDiscard: line splitting and the 256 KiB ring only
// (class null).
func BenchmarkSplitDiscard(b *testing.B) {
	benchSink(b, &Sink{Name: "w", Ring: NewRing(), Drops: NewDrops()})
}

// BenchmarkSplitDest: splitting, ring, and one Write per chunk to a
// destination that discards (the capture path minus the disk).
func BenchmarkSplitDest(b *testing.B) {
	benchSink(b, &Sink{Name: "w", Ring: NewRing(), Drops: NewDrops(), Dest: func(int) Dest { return discard{} }})
}

// BenchmarkSplitPrefix: StdoutStream, each line prefixed "NAME.WID | ".
func BenchmarkSplitPrefix(b *testing.B) {
	benchSink(b, &Sink{Name: "w", Ring: NewRing(), Drops: NewDrops(), Prefix: true, Dest: func(int) Dest { return discard{} }})
}

// BenchmarkSplitTime: each line prefixed with a strftime timestamp.
func BenchmarkSplitTime(b *testing.B) {
	benchSink(b, &Sink{Name: "w", Ring: NewRing(), Drops: NewDrops(), TimeLayout: Layout("%Y-%m-%d %H:%M:%S"), Dest: func(int) Dest { return discard{} }})
}

// BenchmarkCaptureRotating: the full FileStream path to a real file
// rotated every 16 MiB, keeping 2 backups.
func BenchmarkCaptureRotating(b *testing.B) {
	r := NewRotating(filepath.Join(b.TempDir(), "out.log"), 16<<20, 2, 0, false)
	defer r.Close()
	benchSink(b, &Sink{Name: "w", Ring: NewRing(), Drops: NewDrops(), Dest: func(int) Dest { return r }})
}

var _ io.Writer = discard{}
