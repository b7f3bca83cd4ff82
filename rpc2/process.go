package rpc2

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// proc is one supervisor process: a slot of a group.
type proc struct {
	group string
	name  string
	p     Process
	state int
	// err is spawnerr: the slot's or, when fatal or backing off, the
	// group's error.
	err string
}

func (p proc) namespec() string {
	if p.name == p.group {
		return p.name
	}
	return p.group + ":" + p.name
}

func (p proc) running() bool { // supervisor's RUNNING_STATES
	return p.state == StateRunning || p.state == StateBackoff || p.state == StateStarting
}

func (p proc) signallable() bool { // supervisor's SIGNALLABLE_STATES
	return p.pidAlive() && (p.state == StateRunning || p.state == StateStarting || p.state == StateStopping)
}

func (p proc) pidAlive() bool { return p.p.PID > 0 }

// procName is the default supervisor name of slot wid.
func procName(g *Group, wid int) string {
	if g.NumProcesses == 1 && wid == 1 {
		return g.Name
	}
	return fmt.Sprintf("%s_%d", g.Name, wid)
}

// procsOf lists a group's processes by wid: slots 1..NumProcesses, plus
// slots beyond that still holding a process (draining after a scale-down).
func procsOf(g *Group) []proc {
	byWID := map[int]Process{}
	for _, p := range g.Processes {
		if _, dup := byWID[p.WID]; !dup && p.WID > 0 {
			byWID[p.WID] = p
		}
	}
	wids := make([]int, 0, max(g.NumProcesses, len(byWID)))
	for w := 1; w <= g.NumProcesses; w++ {
		wids = append(wids, w)
	}
	for w := range byWID {
		if w > g.NumProcesses {
			wids = append(wids, w)
		}
	}
	slices.Sort(wids)
	out := make([]proc, 0, len(wids))
	for _, w := range wids {
		p, present := byWID[w]
		if !present {
			p = Process{WID: w}
		}
		name := p.Name
		if name == "" {
			name = procName(g, w)
		}
		st, err := mapState(g, p, present)
		out = append(out, proc{group: g.Name, name: name, p: p, state: st, err: err})
	}
	return out
}

// mapState maps circle's watcher and process states to supervisor's
// process state, and returns the spawn error to report.
func mapState(g *Group, p Process, present bool) (int, string) {
	groupErr := p.Error
	if groupErr == "" {
		groupErr = g.Error
	}
	if present {
		switch p.State {
		case "running":
			return StateRunning, p.Error
		case "starting":
			return StateStarting, p.Error
		case "stopping":
			return StateStopping, p.Error
		case "backoff":
			if g.State == "fatal" {
				return StateFatal, groupErr
			}
			return StateBackoff, groupErr
		}
	}
	switch g.State {
	case "fatal":
		return StateFatal, groupErr
	case "flapping", "backoff":
		if present {
			return StateBackoff, groupErr
		}
	case "starting":
		if !present {
			return StateStarting, p.Error
		}
	}
	if present && p.State == "exited" && (g.State == "active" || g.State == "starting" || g.State == "stopped" && g.Wanted) {
		return StateExited, p.Error // ended on its own and left down
	}
	if !present && g.State == "active" {
		return StateStarting, ""
	}
	return StateStopped, p.Error
}

// namespec splits "group:name", "group:*", "group:" and "name".
// whole is true for the group forms.
func splitNamespec(s string) (group, name string, whole bool) {
	g, n, ok := strings.Cut(s, ":")
	if !ok {
		return s, s, false
	}
	if n == "" || n == "*" {
		return g, "", true
	}
	return g, n, false
}

func (h *Handler) groups(ctx context.Context) ([]Group, error) {
	gs, err := h.b.Groups(ctx)
	if err != nil {
		return nil, err
	}
	return gs, nil
}

func findGroup(gs []Group, name string) *Group {
	for i := range gs {
		if gs[i].Name == name {
			return &gs[i]
		}
	}
	return nil
}

// resolve finds a process by namespec; p is nil for a group form.
func (h *Handler) resolve(ctx context.Context, spec string) (*Group, *proc, error) {
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, nil, err
	}
	gname, pname, whole := splitNamespec(spec)
	g := findGroup(gs, gname)
	if g == nil {
		return nil, nil, newFault(FaultBadName, spec)
	}
	if whole {
		return g, nil, nil
	}
	for _, p := range procsOf(g) {
		if p.name == pname {
			return g, &p, nil
		}
	}
	return nil, nil, newFault(FaultBadName, spec)
}

// info is getProcessInfo's struct.
func (h *Handler) info(p proc) map[string]any {
	now := h.now()
	start, stop := unix(p.p.StartedAt), unix(p.p.StoppedAt)
	exit := 0
	if p.p.HasExit {
		exit = p.p.ExitCode
		if p.p.ExitSignal != "" {
			exit = -1 // as supervisor reports a death by signal
		}
	}
	m := map[string]any{
		"name":           p.name,
		"group":          p.group,
		"start":          start,
		"stop":           stop,
		"now":            now.Unix(),
		"state":          p.state,
		"statename":      StateName(p.state),
		"spawnerr":       p.err,
		"exitstatus":     exit,
		"logfile":        p.p.StdoutLogfile,
		"stdout_logfile": p.p.StdoutLogfile,
		"stderr_logfile": p.p.StderrLogfile,
		"pid":            p.p.PID,
	}
	if p.state != StateRunning && p.state != StateStarting && p.state != StateStopping && p.state != StateBackoff {
		m["pid"] = 0
	}
	m["description"] = describe(p, now)
	return m
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// describe is supervisor's description column.
func describe(p proc, now time.Time) string {
	switch p.state {
	case StateRunning:
		up := max(now.Sub(p.p.StartedAt), 0).Truncate(time.Second)
		if p.p.StartedAt.IsZero() {
			up = 0
		}
		return fmt.Sprintf("pid %d, uptime %s", p.p.PID, uptime(up))
	case StateFatal, StateBackoff:
		if p.err != "" {
			return p.err
		}
		return fmt.Sprintf("unknown error (try \"tail %s\")", p.namespec())
	case StateStopped, StateExited:
		switch {
		case !p.p.StoppedAt.IsZero():
			return p.p.StoppedAt.Local().Format("Jan 02 03:04 PM")
		case p.p.StartedAt.IsZero() && !p.p.HasExit:
			return "Not started"
		case p.p.HasExit && p.p.ExitSignal != "":
			return "terminated by SIG" + p.p.ExitSignal
		case p.p.HasExit:
			return fmt.Sprintf("exit status %d", p.p.ExitCode)
		}
		return "Not started"
	}
	return ""
}

// uptime formats as Python's timedelta: "0:01:05", "2 days, 3:04:05".
func uptime(d time.Duration) string {
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	hms := fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	switch days {
	case 0:
		return hms
	case 1:
		return "1 day, " + hms
	}
	return fmt.Sprintf("%d days, %s", days, hms)
}

func result(p proc, code int, detail string) map[string]any {
	desc := "OK"
	if code != FaultSuccess {
		desc = newFault(code, detail).String
	}
	return map[string]any{"name": p.name, "group": p.group, "status": code, "description": desc}
}
