package supervisor

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/watcher"
)

// sinkCache shares one open file per path between the processes (and
// watchers) that write to it. File rotation comes with the logs issue;
// until then a FileStream appends to its file.
type sinkCache struct {
	mu    sync.Mutex
	files map[string]*sharedFile
}

type sharedFile struct {
	mu sync.Mutex
	f  *os.File
}

func (f *sharedFile) Write(p []byte) (int, error) { return f.f.Write(p) }

func newSinkCache() *sinkCache { return &sinkCache{files: map[string]*sharedFile{}} }

func (c *sinkCache) sink(name string, st config.Stream, std io.Writer, stdMu *sync.Mutex) watcher.Sink {
	switch st.Class {
	case "null":
		return nil
	case "file", "timed":
		return fileSink{c: c, name: name, path: st.Filename}
	}
	return watcher.PrefixSink{Name: name, Out: std, Mu: stdMu}
}

type fileSink struct {
	c    *sinkCache
	name string
	path string
}

// Open implements watcher.Sink.
func (s fileSink) Open(wid, pid int) io.WriteCloser {
	p := strings.ReplaceAll(s.path, watcher.WIDToken, strconv.Itoa(wid))
	s.c.mu.Lock()
	f := s.c.files[p]
	if f == nil {
		fh, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			s.c.mu.Unlock()
			return discard{}
		}
		f = &sharedFile{f: fh}
		s.c.files[p] = f
	}
	s.c.mu.Unlock()
	return watcher.PrefixSink{Out: f, Mu: &f.mu, NoPrefix: true}.Open(wid, pid)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }
