package watcher

import (
	"errors"
	"sync"
	"testing"
)

// Concurrent IncrMax calls never take the count beyond the limit: the
// check and the change are one step under the watcher's lock (issue 13
// point 4). The watcher is stopped, so no process starts.
func TestIncrMaxConcurrent(t *testing.T) {
	const limit, callers = 7, 40
	w := New(Spec{Name: "w", NumProcesses: 1}, DirectSpawner{}, nil, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	start := make(chan struct{})
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			n, err := w.IncrMax(1, limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				if n > limit {
					t.Errorf("IncrMax returned %d > %d", n, limit)
				}
			case errors.Is(err, ErrTooManyProcesses):
				refused++
			default:
				t.Errorf("IncrMax: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := w.Spec().NumProcesses; got != limit {
		t.Fatalf("numprocesses = %d, want exactly %d", got, limit)
	}
	if ok != limit-1 || refused != callers-(limit-1) {
		t.Fatalf("%d increments passed and %d were refused, want %d and %d", ok, refused, limit-1, callers-(limit-1))
	}
}

func TestIncrMaxBounds(t *testing.T) {
	w := New(Spec{Name: "w", NumProcesses: 3}, DirectSpawner{}, nil, nil)
	const maxInt = int(^uint(0) >> 1)
	// An overflowing delta is refused, not wrapped.
	if n, err := w.IncrMax(maxInt, 10); !errors.Is(err, ErrTooManyProcesses) || n != 3 {
		t.Fatalf("IncrMax(MaxInt) = %d, %v", n, err)
	}
	if n, err := w.IncrMax(7, 10); err != nil || n != 10 {
		t.Fatalf("IncrMax(7, 10) from 3 = %d, %v", n, err)
	}
	if n, err := w.IncrMax(1, 10); !errors.Is(err, ErrTooManyProcesses) || n != 10 {
		t.Fatalf("IncrMax(1, 10) at 10 = %d, %v", n, err)
	}
	// A decrease is never refused and stops at 0, even from beyond a
	// smaller limit.
	if n, err := w.IncrMax(-4, 5); err != nil || n != 6 {
		t.Fatalf("IncrMax(-4, 5) from 10 = %d, %v", n, err)
	}
	if n, err := w.IncrMax(-maxInt-1, 5); err != nil || n != 0 {
		t.Fatalf("IncrMax(MinInt) = %d, %v", n, err)
	}
	if got := w.Spec().NumProcesses; got != 0 {
		t.Fatalf("numprocesses = %d", got)
	}
}
