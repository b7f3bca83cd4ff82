package watcher

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	p := Policy{BackoffMax: 10 * time.Second}
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {5, 1600 * time.Millisecond}, {8, 10 * time.Second}, {50, 10 * time.Second}} {
		if got := p.Backoff(c.failures, 0.5); got != c.want {
			t.Errorf("Backoff(%d) = %s, want %s", c.failures, got, c.want)
		}
		lo, hi := p.Backoff(c.failures, 0), p.Backoff(c.failures, 0.999)
		if lo < c.want*9/10 || hi > c.want*11/10 {
			t.Errorf("jitter of %d out of ±10%%: %s..%s", c.failures, lo, hi)
		}
	}
}

func TestOnExit(t *testing.T) {
	base := Policy{Respawn: true, MinUptime: time.Second, BackoffMax: 10 * time.Second, MaxRetry: 5,
		Flapping: Flapping{Attempts: 3, Window: 10 * time.Second, RetryIn: 30 * time.Second, MaxRetry: 1}}
	t0 := time.Unix(1000, 0)
	noRespawn := base
	noRespawn.Respawn = false
	forever := base
	forever.Flapping.MaxRetry = -1
	type step struct {
		at       time.Duration
		uptime   time.Duration
		want     Decision
		delay    time.Duration
		failures int
	}
	cases := []struct {
		name  string
		p     Policy
		steps []step
	}{
		{"healthy exit restarts at once", base, []step{{0, 5 * time.Second, Restart, 0, 0}}},
		{"quick exits back off", base, []step{
			{0, 0, Restart, 100 * time.Millisecond, 1},
			{20 * time.Second, 0, Restart, 200 * time.Millisecond, 2}, // outside the window: no flap
		}},
		{"long run resets backoff", base, []step{
			{0, 0, Restart, 100 * time.Millisecond, 1},
			{30 * time.Second, 11 * time.Second, Restart, 0, 0},
		}},
		{"no respawn", noRespawn, []step{{0, 0, LeaveDown, 0, 0}}},
		{"flapping then fatal", base, []step{
			{0, 0, Restart, 100 * time.Millisecond, 1},
			{time.Second, 0, Restart, 200 * time.Millisecond, 2},
			{2 * time.Second, 0, Flap, 30 * time.Second, 0},
			{40 * time.Second, 0, Restart, 100 * time.Millisecond, 1},
			{41 * time.Second, 0, Restart, 200 * time.Millisecond, 2},
			{42 * time.Second, 0, Fatal, 0, 0},
		}},
		// circus: flapping.max_retry = -1 retries forever; it used to
		// make the first flapping round fatal.
		{"flapping.max_retry -1 flaps forever", forever, []step{
			{0, 0, Restart, 100 * time.Millisecond, 1},
			{time.Second, 0, Restart, 200 * time.Millisecond, 2},
			{2 * time.Second, 0, Flap, 30 * time.Second, 0},
			{40 * time.Second, 0, Restart, 100 * time.Millisecond, 1},
			{41 * time.Second, 0, Restart, 200 * time.Millisecond, 2},
			{42 * time.Second, 0, Flap, 30 * time.Second, 0},
			{80 * time.Second, 0, Restart, 100 * time.Millisecond, 1},
			{81 * time.Second, 0, Restart, 200 * time.Millisecond, 2},
			{82 * time.Second, 0, Flap, 30 * time.Second, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h History
			failures := 0
			for i, s := range c.steps {
				var d Decision
				var delay time.Duration
				d, delay, failures, h = c.p.OnExit(t0.Add(s.at), s.uptime, failures, h, 0.5)
				if d != s.want || delay != s.delay || failures != s.failures {
					t.Fatalf("step %d: got %s %s failures=%d, want %s %s failures=%d", i, d, delay, failures, s.want, s.delay, s.failures)
				}
			}
		})
	}
}

func TestOnSpawnError(t *testing.T) {
	p := Policy{MaxRetry: 2, BackoffMax: time.Second}
	d, delay, n := p.OnSpawnError(0, 0.5)
	if d != Restart || delay != 100*time.Millisecond || n != 1 {
		t.Fatal(d, delay, n)
	}
	if d, _, _ = p.OnSpawnError(2, 0.5); d != Fatal {
		t.Fatal(d)
	}
	p.MaxRetry = -1
	if d, _, _ = p.OnSpawnError(1000, 0.5); d != Restart {
		t.Fatal(d)
	}
}

// A churn with a huge flapping.attempts keeps only the exits inside the
// window: the history is bounded by time, not by attempts.
func TestOnExitHistoryBoundedByWindow(t *testing.T) {
	p := Policy{Respawn: true, MinUptime: 0, BackoffMax: time.Second,
		Flapping: Flapping{Attempts: 1000000, Window: time.Second, RetryIn: time.Second, MaxRetry: 1}}
	t0 := time.Unix(1000, 0)
	var h History
	failures := 0
	maxCap := 0
	for i := 0; i < 100000; i++ { // one exit per ms for 100 s
		var d Decision
		d, _, failures, h = p.OnExit(t0.Add(time.Duration(i)*time.Millisecond), 0, failures, h, 0.5)
		if d != Restart {
			t.Fatalf("exit %d: %s", i, d)
		}
		maxCap = max(maxCap, cap(h.Exits))
	}
	if n := len(h.Exits); n < 1000 || n > 1001 {
		t.Fatalf("history holds %d exits, want the ≈1000 of the last second", n)
	}
	if maxCap > 4096 {
		t.Fatalf("history array grew to %d entries", maxCap)
	}
	// And the count still trips inside the window.
	q := p
	q.Flapping.Attempts = 3
	h = History{}
	var d Decision
	for i := 0; i < 3; i++ {
		d, _, _, h = q.OnExit(t0.Add(time.Duration(i)*time.Millisecond), 0, 0, h, 0.5)
	}
	if d != Flap {
		t.Fatalf("3 exits in 2 ms with attempts=3: %s, want flap", d)
	}
}
