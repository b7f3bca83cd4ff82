package evlistener_test

import (
	"log/slog"

	"github.com/circle-supervisor/circle/internal/evlistener"
	"github.com/circle-supervisor/circle/watcher"
)

// How the supervisor wires an [eventlistener:crashmail] section and
// reports a process's life (compiled, not run).
func Example() {
	bus := evlistener.NewBus("supervisor") // [supervisord] identifier
	defer bus.Close()

	pool, err := bus.AddPool(evlistener.PoolConfig{
		Name: "crashmail", Events: []string{"PROCESS_STATE_EXITED"}, BufferSize: 10, Log: slog.Default()})
	if err != nil {
		panic(err)
	}
	var stdoutLog, stderrLog watcher.Sink // the listener's usual log sinks
	spec := watcher.Spec{
		Name:   "crashmail",
		Argv:   []string{"crashmail", "-a", "-m", "ops@example.com"},
		Stdin:  pool.Stdin,             // events go in here
		Stdout: pool.Stdout(stdoutLog), // READY / RESULT come out here (and are logged)
		Stderr: stderrLog,
	}
	_ = spec

	// A program with stdout_events_enabled = true:
	var webStdout watcher.Sink
	webStdout = bus.LogEvents(webStdout, "stdout", func(wid int) (string, string) { return "web", "web" })
	_ = webStdout

	// What circled sees of program web, told to a Tracker, becomes the
	// PROCESS_STATE_* events supervisord would send.
	tr := evlistener.NewTracker()
	publish := func(cs []evlistener.StateChange) {
		for _, c := range cs {
			bus.Publish(c.Event())
		}
	}
	publish(tr.Spawned("web", "web", 4321))       // EventSpawn
	publish(tr.Running("web", "web", 4321))       // EventReady
	publish(tr.Exited("web", "web", 4321, false)) // EventExit, code not in exitcodes
}
