package rpc2

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

type fn = func(ctx context.Context, args []any) (any, error)

func (h *Handler) table() map[string]*method {
	t := map[string]*method{}
	add := func(name string, sig []string, optional int, help string, f fn) {
		t[name] = &method{name: name, sig: sig, optional: optional, help: help, fn: f}
	}
	noargs := func(ret string) []string { return []string{ret} }

	add("supervisor.getAPIVersion", noargs("string"), 0, "Return the version of the RPC API used by supervisord.", h.getAPIVersion)
	add("supervisor.getVersion", noargs("string"), 0, "Return the version of the RPC API (alias of getAPIVersion).", h.getAPIVersion)
	add("supervisor.getSupervisorVersion", noargs("string"), 0, "Return the version of circle (the daemon in place of supervisord).", h.getSupervisorVersion)
	add("supervisor.getIdentification", noargs("string"), 0, "Return the identifying string of the daemon.", h.getIdentification)
	add("supervisor.getState", noargs("struct"), 0, "Return the daemon's state as a struct {statecode, statename}.", h.getState)
	add("supervisor.getPID", noargs("int"), 0, "Return the daemon's PID.", h.getPID)
	add("supervisor.readLog", []string{"string", "int", "int"}, 2, "Read length bytes of the daemon's log from offset (the last -offset bytes when offset < 0 and length is 0).", h.readLog)
	add("supervisor.readMainLog", []string{"string", "int", "int"}, 2, "Alias of readLog.", h.readLog)
	add("supervisor.tailLog", []string{"array", "int", "int"}, 2, "Tail the daemon's log: returns [string bytes, int offset, bool overflow].", h.tailLog)
	add("supervisor.clearLog", noargs("boolean"), 0, "Clear the daemon's log.", h.clearLog)
	add("supervisor.shutdown", noargs("boolean"), 0, "Stop every process, then the daemon.", h.shutdown)
	add("supervisor.restart", noargs("boolean"), 0, "Restart every process with a freshly read config.", h.restart)
	add("supervisor.reloadConfig", noargs("array"), 0, "Re-read and apply the config; returns [[added, changed, removed]] group names.", h.reloadConfig)
	add("supervisor.addProcessGroup", []string{"boolean", "string"}, 1, "Acknowledge a group that the last reloadConfig added or changed.", h.addProcessGroup)
	add("supervisor.removeProcessGroup", []string{"boolean", "string"}, 1, "Acknowledge a group that the last reloadConfig removed.", h.removeProcessGroup)
	add("supervisor.getProcessInfo", []string{"struct", "string"}, 1, "Get info about a process named name (or group:name).", h.getProcessInfo)
	add("supervisor.getAllProcessInfo", noargs("array"), 0, "Get info about all processes.", h.getAllProcessInfo)
	add("supervisor.getAllConfigInfo", noargs("array"), 0, "Get info about all process configurations.", h.getAllConfigInfo)
	add("supervisor.startProcess", []string{"boolean", "string", "boolean"}, 1, "Start a process (name, group:name or group:*), waiting for it to run unless wait is false.", h.startProcess)
	add("supervisor.startProcessGroup", []string{"array", "string", "boolean"}, 1, "Start every process of a group; returns an array of result structs.", h.startProcessGroup)
	add("supervisor.startAllProcesses", []string{"array", "boolean"}, 0, "Start every process; returns an array of result structs.", h.startAllProcesses)
	add("supervisor.stopProcess", []string{"boolean", "string", "boolean"}, 1, "Stop a process (name, group:name or group:*), waiting for it to stop unless wait is false.", h.stopProcess)
	add("supervisor.stopProcessGroup", []string{"array", "string", "boolean"}, 1, "Stop every process of a group; returns an array of result structs.", h.stopProcessGroup)
	add("supervisor.stopAllProcesses", []string{"array", "boolean"}, 0, "Stop every process; returns an array of result structs.", h.stopAllProcesses)
	add("supervisor.signalProcess", []string{"boolean", "string", "string"}, 1, "Send a signal (name or number, HUP by default) to a process.", h.signalProcess)
	add("supervisor.signalProcessGroup", []string{"array", "string", "string"}, 1, "Send a signal to every running process of a group.", h.signalProcessGroup)
	add("supervisor.signalAllProcesses", []string{"array", "string"}, 0, "Send a signal to every running process.", h.signalAllProcesses)
	for _, stream := range []string{"Stdout", "Stderr"} {
		s := stream
		read := func(ctx context.Context, args []any) (any, error) { return h.readProcessLog(ctx, args, s) }
		tail := func(ctx context.Context, args []any) (any, error) { return h.tailProcessLog(ctx, args, s) }
		add("supervisor.readProcess"+s+"Log", []string{"string", "string", "int", "int"}, 3, "Read length bytes of a process's "+s+" log from offset (the last -offset bytes when offset < 0 and length is 0).", read)
		add("supervisor.tailProcess"+s+"Log", []string{"array", "string", "int", "int"}, 3, "Tail a process's "+s+" log: returns [string bytes, int offset, bool overflow].", tail)
	}
	t["supervisor.readProcessLog"] = aliasOf(t["supervisor.readProcessStdoutLog"], "supervisor.readProcessLog")
	t["supervisor.tailProcessLog"] = aliasOf(t["supervisor.tailProcessStdoutLog"], "supervisor.tailProcessLog")
	add("supervisor.clearProcessLogs", []string{"boolean", "string"}, 1, "Clear a process's stdout and stderr logs.", h.clearProcessLogs)
	t["supervisor.clearProcessLog"] = aliasOf(t["supervisor.clearProcessLogs"], "supervisor.clearProcessLog")
	add("supervisor.clearAllProcessLogs", noargs("array"), 0, "Clear every process's logs; returns an array of result structs.", h.clearAllProcessLogs)

	add("system.listMethods", noargs("array"), 0, "Return an array of the method names available.", h.listMethods)
	add("system.methodHelp", []string{"string", "string"}, 1, "Return a method's documentation.", h.methodHelp)
	add("system.methodSignature", []string{"array", "string"}, 1, "Return a method's signature: [return type, parameter types...].", h.methodSignature)
	add("system.multicall", []string{"array", "array"}, 1, "Run an array of {methodName, params} calls; returns an array of [result] or {faultCode, faultString}.", h.multicall)
	return t
}

func aliasOf(m *method, name string) *method {
	c := *m
	c.name = name
	return &c
}

func (h *Handler) getAPIVersion(ctx context.Context, _ []any) (any, error) { return APIVersion, nil }

func (h *Handler) getSupervisorVersion(ctx context.Context, _ []any) (any, error) {
	i, err := h.b.Info(ctx)
	return i.Version, err
}

func (h *Handler) getIdentification(ctx context.Context, _ []any) (any, error) {
	i, err := h.b.Info(ctx)
	if i.Identification == "" {
		i.Identification = "supervisor"
	}
	return i.Identification, err
}

func (h *Handler) getState(ctx context.Context, _ []any) (any, error) {
	i, err := h.b.Info(ctx)
	if err != nil {
		return nil, err
	}
	code, name := SupervisorRunning, "RUNNING"
	if i.ShuttingDown {
		code, name = SupervisorShutdown, "SHUTDOWN"
	}
	return map[string]any{"statecode": code, "statename": name}, nil
}

func (h *Handler) getPID(ctx context.Context, _ []any) (any, error) {
	i, err := h.b.Info(ctx)
	return i.PID, err
}

func (h *Handler) shutdown(ctx context.Context, _ []any) (any, error) {
	return true, h.b.Shutdown(ctx)
}

func (h *Handler) restart(ctx context.Context, _ []any) (any, error) {
	return true, h.b.Restart(ctx)
}

// reloadConfig applies the config at once (circle has no separate
// "reread" and "update" steps). It remembers what changed so that the
// stopProcessGroup, removeProcessGroup and addProcessGroup calls that
// `supervisorctl update` then makes for those groups, in that order,
// succeed without acting again.
func (h *Handler) reloadConfig(ctx context.Context, _ []any) (any, error) {
	c, err := h.b.ReloadConfig(ctx)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.pending = map[string]string{}
	for _, n := range c.Added {
		h.pending[n] = "added"
	}
	for _, n := range c.Changed {
		h.pending[n] = "changed"
	}
	for _, n := range c.Removed {
		h.pending[n] = "removed"
	}
	h.mu.Unlock()
	nz := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	return []any{[]any{nz(c.Added), nz(c.Changed), nz(c.Removed)}}, nil
}

// takePending moves group's pending entry from one of from to "to" ("" to
// forget it) and reports whether it was there.
func (h *Handler) takePending(group, to string, from ...string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Contains(from, h.pending[group]) {
		return false
	}
	if to == "" {
		delete(h.pending, group)
	} else {
		h.pending[group] = to
	}
	return true
}

func (h *Handler) addProcessGroup(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	if h.takePending(name, "", "added", "changed", "changed-stopped", "changed-removed") {
		return true, nil
	}
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, err
	}
	if findGroup(gs, name) != nil {
		return nil, newFault(FaultAlreadyAdded, name)
	}
	return nil, newFault(FaultBadName, name)
}

func (h *Handler) removeProcessGroup(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	if h.takePending(name, "", "removed") || h.takePending(name, "changed-removed", "changed", "changed-stopped") {
		return true, nil
	}
	g, err := h.group(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, p := range procsOf(g) {
		if p.running() || p.state == StateStopping {
			return nil, newFault(FaultStillRunning, name)
		}
	}
	return nil, newFault(FaultFailed, name+": circle removes a group when it leaves the config: remove it there, then reread")
}

func (h *Handler) getProcessInfo(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	_, p, err := h.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, newFault(FaultBadName, name)
	}
	return h.info(*p), nil
}

// all lists every process, groups sorted by name.
func (h *Handler) all(ctx context.Context, lexical bool) ([]proc, error) {
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, err
	}
	if lexical {
		slices.SortStableFunc(gs, func(a, b Group) int {
			switch {
			case a.Name < b.Name:
				return -1
			case a.Name > b.Name:
				return 1
			}
			return 0
		})
	}
	var out []proc
	for i := range gs {
		out = append(out, procsOf(&gs[i])...)
	}
	return out, nil
}

func (h *Handler) getAllProcessInfo(ctx context.Context, _ []any) (any, error) {
	ps, err := h.all(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, h.info(p))
	}
	return out, nil
}

func (h *Handler) getAllConfigInfo(ctx context.Context, _ []any) (any, error) {
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for i := range gs {
		g := &gs[i]
		c := g.Config
		exit := c.ExitCodes
		if exit == nil {
			exit = []int{}
		}
		for _, p := range procsOf(g) {
			if p.p.WID > g.NumProcesses {
				continue // draining: no longer configured
			}
			out = append(out, map[string]any{
				"name": p.name, "group": g.Name, "inuse": true, "autostart": g.Autostart,
				"group_prio": g.Priority, "process_prio": g.Priority,
				"command": c.Command, "directory": c.Directory, "uid": c.User, "exitcodes": exit,
				"stopsignal": c.StopSignal, "stopwaitsecs": c.StopWaitSecs, "startsecs": c.StartSecs,
				"startretries": c.StartRetries, "killasgroup": c.KillAsGroup,
				"redirect_stderr": p.p.RedirectStderr,
				"stdout_logfile":  p.p.StdoutLogfile, "stderr_logfile": p.p.StderrLogfile,
			})
		}
	}
	slices.SortStableFunc(out, func(a, b map[string]any) int {
		an, bn := a["name"].(string), b["name"].(string)
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return 0
	})
	if out == nil {
		out = []map[string]any{}
	}
	return out, nil
}

// startProcess: supervisor's semantics. A group form starts the group.
func (h *Handler) startProcess(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	wait, err := argBool(args, 1, true)
	if err != nil {
		return nil, err
	}
	g, p, err := h.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return h.startGroup(ctx, g, wait)
	}
	if p.running() {
		return nil, newFault(FaultAlreadyStarted, name)
	}
	wid := p.p.WID
	if g.NumProcesses == 1 && wid == 1 {
		wid = 0 // the whole watcher is this process
	}
	if err := h.b.Start(ctx, g.Name, wid, wait); err != nil {
		return nil, err
	}
	if wait {
		if f := h.checkStarted(ctx, g.Name, p.name, name); f != nil {
			return nil, f
		}
	}
	return true, nil
}

// checkStarted reports a fault when process pname of group ended up not
// running after a start with wait.
func (h *Handler) checkStarted(ctx context.Context, group, pname, spec string) *Fault {
	gs, err := h.groups(ctx)
	if err != nil {
		return h.toFault(err)
	}
	g := findGroup(gs, group)
	if g == nil {
		return newFault(FaultBadName, spec)
	}
	for _, p := range procsOf(g) {
		if p.name != pname {
			continue
		}
		switch p.state {
		case StateRunning, StateStarting:
			return nil
		case StateFatal, StateBackoff:
			return newFault(FaultSpawnError, spec)
		}
		return newFault(FaultAbnormalTermination, spec)
	}
	return newFault(FaultBadName, spec)
}

func (h *Handler) startGroup(ctx context.Context, g *Group, wait bool) (any, error) {
	var todo []proc
	for _, p := range procsOf(g) {
		if !p.running() && p.p.WID <= g.NumProcesses {
			todo = append(todo, p)
		}
	}
	out := []map[string]any{}
	if len(todo) == 0 {
		return out, nil
	}
	if err := h.b.Start(ctx, g.Name, 0, wait); err != nil {
		f := h.toFault(err)
		if f.Code == FaultShutdownState {
			return nil, f
		}
		for _, p := range todo {
			out = append(out, result(p, f.Code, p.namespec()))
		}
		return out, nil
	}
	for _, p := range todo {
		code := FaultSuccess
		if wait {
			if f := h.checkStarted(ctx, g.Name, p.name, p.namespec()); f != nil {
				code = f.Code
			}
		}
		out = append(out, result(p, code, p.namespec()))
	}
	return out, nil
}

func (h *Handler) startProcessGroup(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	wait, err := argBool(args, 1, true)
	if err != nil {
		return nil, err
	}
	g, err := h.group(ctx, name)
	if err != nil {
		return nil, err
	}
	return h.startGroup(ctx, g, wait)
}

func (h *Handler) startAllProcesses(ctx context.Context, args []any) (any, error) {
	wait, err := argBool(args, 0, true)
	if err != nil {
		return nil, err
	}
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for i := range gs {
		r, err := h.startGroup(ctx, &gs[i], wait)
		if err != nil {
			return nil, err
		}
		out = append(out, r.([]map[string]any)...)
	}
	return out, nil
}

func (h *Handler) stopProcess(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	wait, err := argBool(args, 1, true)
	if err != nil {
		return nil, err
	}
	g, p, err := h.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return h.stopGroup(ctx, g, wait)
	}
	if !p.running() {
		return nil, newFault(FaultNotRunning, name)
	}
	wid := p.p.WID
	if g.NumProcesses == 1 && wid == 1 {
		wid = 0
	}
	if err := h.b.Stop(ctx, g.Name, wid, wait); err != nil {
		return nil, err
	}
	return true, nil
}

func (h *Handler) stopGroup(ctx context.Context, g *Group, wait bool) (any, error) {
	var todo []proc
	for _, p := range procsOf(g) {
		if p.running() {
			todo = append(todo, p)
		}
	}
	out := []map[string]any{}
	if len(todo) == 0 {
		return out, nil
	}
	code, detail := FaultSuccess, ""
	if err := h.b.Stop(ctx, g.Name, 0, wait); err != nil {
		f := h.toFault(err)
		if f.Code == FaultShutdownState {
			return nil, f
		}
		code, detail = f.Code, err.Error()
	}
	for _, p := range todo {
		out = append(out, result(p, code, detail))
	}
	return out, nil
}

func (h *Handler) stopProcessGroup(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	wait, err := argBool(args, 1, true)
	if err != nil {
		return nil, err
	}
	// supervisorctl update stops a removed or changed group before it
	// removes and re-adds it: circle already applied the change.
	if h.takePending(name, "removed", "removed") || h.takePending(name, "changed-stopped", "changed") {
		return []map[string]any{}, nil
	}
	g, err := h.group(ctx, name)
	if err != nil {
		return nil, err
	}
	return h.stopGroup(ctx, g, wait)
}

func (h *Handler) stopAllProcesses(ctx context.Context, args []any) (any, error) {
	wait, err := argBool(args, 0, true)
	if err != nil {
		return nil, err
	}
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	// Stop in reverse start order.
	for i := len(gs) - 1; i >= 0; i-- {
		r, err := h.stopGroup(ctx, &gs[i], wait)
		if err != nil {
			return nil, err
		}
		out = append(out, r.([]map[string]any)...)
	}
	return out, nil
}

func (h *Handler) signalOne(ctx context.Context, p proc, sig string) *Fault {
	if !p.signallable() {
		return newFault(FaultNotRunning, p.namespec())
	}
	if err := h.b.Signal(ctx, p.group, p.p.PID, sig); err != nil {
		return h.toFault(err)
	}
	return nil
}

func (h *Handler) signalProcess(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	g, p, err := h.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	sig, err := argSignal(args, 1, "HUP")
	if err != nil {
		return nil, err
	}
	if p == nil {
		return h.signalGroup(ctx, g, sig), nil
	}
	if f := h.signalOne(ctx, *p, sig); f != nil {
		return nil, f
	}
	return true, nil
}

func (h *Handler) signalGroup(ctx context.Context, g *Group, sig string) []map[string]any {
	out := []map[string]any{}
	for _, p := range procsOf(g) {
		if !p.running() {
			continue
		}
		if f := h.signalOne(ctx, p, sig); f != nil {
			out = append(out, map[string]any{"name": p.name, "group": p.group, "status": f.Code, "description": f.String})
			continue
		}
		out = append(out, result(p, FaultSuccess, ""))
	}
	return out
}

func (h *Handler) signalProcessGroup(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	g, err := h.group(ctx, name)
	if err != nil {
		return nil, err
	}
	sig, err := argSignal(args, 1, "HUP")
	if err != nil {
		return nil, err
	}
	return h.signalGroup(ctx, g, sig), nil
}

func (h *Handler) signalAllProcesses(ctx context.Context, args []any) (any, error) {
	sig, err := argSignal(args, 0, "HUP")
	if err != nil {
		return nil, err
	}
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for i := range gs {
		out = append(out, h.signalGroup(ctx, &gs[i], sig)...)
	}
	return out, nil
}

func (h *Handler) clearProcessLogs(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	_, p, err := h.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, newFault(FaultBadName, name)
	}
	if err := h.b.ClearLog(ctx, LogRef{Group: p.group, WID: p.p.WID}); err != nil {
		return nil, err
	}
	return true, nil
}

func (h *Handler) clearAllProcessLogs(ctx context.Context, _ []any) (any, error) {
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for i := range gs {
		for _, p := range procsOf(&gs[i]) {
			if err := h.b.ClearLog(ctx, LogRef{Group: p.group, WID: p.p.WID}); err != nil {
				f := h.toFault(err)
				out = append(out, map[string]any{"name": p.name, "group": p.group, "status": f.Code, "description": f.String})
				continue
			}
			out = append(out, result(p, FaultSuccess, ""))
		}
	}
	return out, nil
}

func (h *Handler) listMethods(ctx context.Context, _ []any) (any, error) {
	return slices.Sorted(maps.Keys(h.methods)), nil
}

func (h *Handler) methodHelp(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	m, ok := h.methods[name]
	if !ok {
		return nil, newFault(FaultSignatureUnsupported, "")
	}
	return m.help, nil
}

func (h *Handler) methodSignature(ctx context.Context, args []any) (any, error) {
	name, err := argString(args, 0, "")
	if err != nil {
		return nil, err
	}
	m, ok := h.methods[name]
	if !ok {
		return nil, newFault(FaultSignatureUnsupported, "")
	}
	return slices.Clone(m.sig), nil
}

// maxMulticall bounds the calls in one system.multicall.
const maxMulticall = 1000

func (h *Handler) multicall(ctx context.Context, args []any) (any, error) {
	calls, ok := args[0].([]any)
	if !ok {
		return nil, newFault(FaultIncorrectParameters, "system.multicall takes an array of {methodName, params} structs")
	}
	if len(calls) > maxMulticall {
		return nil, newFault(FaultIncorrectParameters, fmt.Sprintf("more than %d calls", maxMulticall))
	}
	out := make([]any, 0, len(calls))
	for _, c := range calls {
		fault := func(f *Fault) { out = append(out, map[string]any{"faultCode": f.Code, "faultString": f.String}) }
		m, ok := c.(map[string]any)
		if !ok {
			fault(newFault(FaultIncorrectParameters, "a call must be a struct"))
			continue
		}
		name, ok := m["methodName"].(string)
		if !ok {
			fault(newFault(FaultIncorrectParameters, "No methodName"))
			continue
		}
		var params []any
		switch p := m["params"].(type) {
		case nil:
		case []any:
			params = p
		default:
			fault(newFault(FaultIncorrectParameters, "params must be an array"))
			continue
		}
		v, f := h.call(ctx, name, params, false)
		if f != nil {
			fault(f)
			continue
		}
		out = append(out, []any{v})
	}
	return out, nil
}

// group is the named group, or a BAD_NAME fault.
func (h *Handler) group(ctx context.Context, name string) (*Group, error) {
	gs, err := h.groups(ctx)
	if err != nil {
		return nil, err
	}
	g := findGroup(gs, name)
	if g == nil {
		return nil, newFault(FaultBadName, name)
	}
	return g, nil
}
