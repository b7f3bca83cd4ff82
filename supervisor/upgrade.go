package supervisor

import (
	"errors"
	"time"

	"github.com/circle-supervisor/circle/internal/evlistener"
	"github.com/circle-supervisor/circle/internal/sockets"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/circle-supervisor/circle/supervisor/logs"
	"github.com/circle-supervisor/circle/watcher"
)

// UpgradeFormat is the version of the state a live upgrade hands over
// (UpgradeState) when no event listener is: what binaries before
// UpgradeFormatEvListeners read. A binary's __upgrade-check lists the
// formats it reads; add one on any change a reader of the previous
// format would get wrong.
const UpgradeFormat = 1

// UpgradeFormatEvListeners is the format of a state with event listener
// watchers (UpgradeState.EvListeners): a reader of format 1 would ignore
// that field and leave the listeners unfed, so it must refuse it.
const UpgradeFormatEvListeners = 2

// UpgradeFormatChecks is the format of a state that hands over a
// process still in its readiness checks or a notify socket
// (watcher.Frozen.HandsChecks), with or without event listeners: a
// reader of formats 1 and 2 would take the first for ready once it has
// run min_uptime and leave the second's descriptor open and unread, so
// it must refuse it. (Health checks' and max_age's fields need no new
// format: such a reader ignores them and starts both afresh.)
const UpgradeFormatChecks = 3

// UpgradeFormats are the formats this binary's adoption reads.
var UpgradeFormats = []int{UpgradeFormat, UpgradeFormatEvListeners, UpgradeFormatChecks}

// ErrUpgrade wraps the reasons a live upgrade is refused (nothing
// changed).
var ErrUpgrade = errors.New("upgrade refused")

// UpgradeState is the document the running circled hands to the binary
// it executes in place (issue 19; DESIGN.md "Live upgrade"). Descriptors
// are given by number: exec keeps them.
type UpgradeState struct {
	Format int `json:"format"`
	// From is the version that wrote it; Upgrades counts the live
	// upgrades of this process, this one included.
	From     string `json:"from"`
	Upgrades int    `json:"upgrades"`
	// Config is the running config (never re-read during the upgrade);
	// Snap the bytes of its files when loaded (a config changed on disk
	// is applied by the next reload, or the config watch).
	Config          *config.Config    `json:"config"`
	Snap            map[string][]byte `json:"snap"`
	LastReloadError string            `json:"last_reload_error,omitempty"`
	Watchers        []UpgradeWatcher  `json:"watchers"`
	// Sockets are the [socket:NAME] sockets (their descriptors).
	Sockets []sockets.Handed `json:"sockets,omitempty"`
	// Events are the kept events (GET /v1/events?since=), oldest first.
	Events []Event `json:"events,omitempty"`
	// Cgroup is the containment subtree (reused, not made again).
	Cgroup string `json:"cgroup,omitempty"`
	// Counters are the metrics counters (GET /metrics goes on from
	// them; a reader without the field starts them from zero).
	Counters *CountersState `json:"counters,omitempty"`
	// Set by circled: the control socket's listening descriptor, the
	// systemd notify socket.
	Listener     int    `json:"listener"`
	NotifySocket string `json:"notify_socket,omitempty"`
	// StartPath is the path the process was first started from (what
	// an upgrade without a binary executes), kept across upgrades.
	StartPath string `json:"start_path,omitempty"`
	// ExecAt is about when the exec happened (the new binary logs how
	// long it took to serve again).
	ExecAt   time.Time `json:"exec_at"`
	LogLevel string    `json:"log_level,omitempty"`
	// EvListeners are the event listener pools, their listeners'
	// protocol state and the PROCESS_STATE tracker (format 2).
	EvListeners *EvListenersState `json:"evlisteners,omitempty"`
}

// EvListenersState is what a live upgrade hands over of the event
// listeners (evl_upgrade.go): the bus (serials, tick boundaries, each
// pool's buffered events and listeners, whose standard inputs are
// descriptors), the tracker's process states, and the spawn times the
// RUNNING shortcut uses.
type EvListenersState struct {
	Bus     evlistener.BusState     `json:"bus"`
	Tracker evlistener.TrackerState `json:"tracker"`
	Spawned []EvSpawned             `json:"spawned,omitempty"`
}

// EvSpawned is a live process's spawn time as the listeners' event
// goroutine saw it.
type EvSpawned struct {
	Watcher string    `json:"watcher"`
	WID     int       `json:"wid"`
	PID     int       `json:"pid"`
	At      time.Time `json:"at"`
}

// UpgradeWatcher is one watcher's part.
type UpgradeWatcher struct {
	Wanted bool               `json:"wanted"` // the last command wants it up (its lane)
	State  watcher.AdoptState `json:"state"`
	Ring   logs.RingState     `json:"ring"`
}
