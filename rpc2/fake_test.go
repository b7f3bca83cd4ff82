package rpc2

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is an in-memory Backend: groups of slots that start and stop at
// once, logs that tests append to.
type fake struct {
	mu      sync.Mutex
	groups  []*fakeGroup
	nextPID int
	signals []string
	logs    map[LogRef][]byte
	grew    chan struct{} // closed and replaced whenever a log grows
	down    bool
	reload  Changes
	reloadE error
	cleared []LogRef
}

type fakeGroup struct {
	name      string
	n         int
	prio      int
	autostart bool
	want      bool
	spawnErr  string // Start makes the group fatal with this error
	slots     map[int]*Process
}

func newFake() *fake {
	f := &fake{nextPID: 1000, logs: map[LogRef][]byte{}, grew: make(chan struct{})}
	f.add("web", 1, 10, true)
	f.add("worker", 3, 20, true)
	f.add("cron", 1, 30, false)
	return f
}

func (f *fake) add(name string, n, prio int, start bool) *fakeGroup {
	g := &fakeGroup{name: name, n: n, prio: prio, autostart: start, slots: map[int]*Process{}}
	f.groups = append(f.groups, g)
	if start {
		f.startLocked(g, 0)
	}
	return g
}

func (f *fake) group(name string) (*fakeGroup, error) {
	for _, g := range f.groups {
		if g.name == name {
			return g, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNoSuchGroup, name)
}

func (f *fake) startLocked(g *fakeGroup, wid int) {
	g.want = true
	for w := 1; w <= g.n; w++ {
		if wid != 0 && w != wid {
			continue
		}
		if g.spawnErr != "" {
			g.slots[w] = &Process{WID: w, State: "backoff", Error: g.spawnErr}
			continue
		}
		if p := g.slots[w]; p != nil && p.State == "running" {
			continue
		}
		f.nextPID++
		g.slots[w] = &Process{WID: w, PID: f.nextPID, State: "running", StartedAt: time.Unix(1700000000, 0),
			StdoutLogfile: "/var/log/" + g.name + ".log"}
	}
}

func (f *fake) appendLog(ref LogRef, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[ref] = append(f.logs[ref], s...)
	close(f.grew)
	f.grew = make(chan struct{})
}

func (f *fake) Info(ctx context.Context) (Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Info{Version: "1.2.3", PID: 4242, ShuttingDown: f.down}, nil
}

func (f *fake) Groups(ctx context.Context) ([]Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Group
	for _, g := range f.groups {
		st := "stopped"
		switch {
		case g.spawnErr != "" && g.want:
			st = "fatal"
		case g.want:
			st = "active"
		}
		gr := Group{Name: g.name, State: st, NumProcesses: g.n, Priority: g.prio, Autostart: g.autostart,
			Config: Config{Command: "/bin/" + g.name, StopSignal: 15, ExitCodes: []int{0}}}
		if st == "fatal" {
			gr.Error = g.spawnErr
		}
		for w := 1; w <= g.n; w++ {
			if p := g.slots[w]; p != nil {
				gr.Processes = append(gr.Processes, *p)
			}
		}
		out = append(out, gr)
	}
	return out, nil
}

func (f *fake) Start(ctx context.Context, group string, wid int, wait bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return ErrShuttingDown
	}
	g, err := f.group(group)
	if err != nil {
		return err
	}
	if wid != 0 && g.n > 1 {
		return fmt.Errorf("%w: one process of %s", ErrUnsupported, group)
	}
	f.startLocked(g, wid)
	return nil
}

func (f *fake) Stop(ctx context.Context, group string, wid int, wait bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return ErrShuttingDown
	}
	g, err := f.group(group)
	if err != nil {
		return err
	}
	if wid != 0 && g.n > 1 {
		return fmt.Errorf("%w: one process of %s", ErrUnsupported, group)
	}
	g.want = false
	for _, p := range g.slots {
		if p.State == "running" {
			*p = Process{WID: p.WID, State: "exited", StartedAt: p.StartedAt, StoppedAt: time.Unix(1700000100, 0),
				HasExit: true, ExitSignal: "TERM", StdoutLogfile: p.StdoutLogfile}
		}
	}
	return nil
}

func (f *fake) Signal(ctx context.Context, group string, pid int, sig string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, fmt.Sprintf("%s/%d/%s", group, pid, sig))
	return nil
}

func (f *fake) ReloadConfig(ctx context.Context) (Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reload, f.reloadE
}

func (f *fake) ReadLog(ctx context.Context, ref LogRef, off int64, n int) (LogChunk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ref.Group != "" {
		if _, err := f.group(ref.Group); err != nil {
			return LogChunk{}, err
		}
	}
	if ref.Stream == "stderr" {
		return LogChunk{}, fmt.Errorf("%w: %s has no stderr log", ErrNoLog, ref.Group)
	}
	b := f.logs[LogRef{Group: ref.Group, WID: ref.WID, Stream: ref.Stream}]
	size := int64(len(b))
	if off < 0 {
		off = max(size-int64(n), 0)
	}
	off = min(off, size)
	end := min(off+int64(n), size)
	return LogChunk{Data: bytes.Clone(b[off:end]), From: off, Size: size}, nil
}

func (f *fake) ClearLog(ctx context.Context, ref LogRef) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleared = append(f.cleared, ref)
	delete(f.logs, LogRef{Group: ref.Group, WID: ref.WID, Stream: "stdout"})
	return nil
}

func (f *fake) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	return nil
}

func (f *fake) Restart(ctx context.Context) error {
	return fmt.Errorf("%w: restart", ErrUnsupported)
}

func (f *fake) FollowLog(ctx context.Context, ref LogRef, tail int, w io.Writer) error {
	f.mu.Lock()
	b := f.logs[ref]
	sent := max(len(b)-tail, 0)
	for {
		b = f.logs[ref]
		chunk := bytes.Clone(b[min(sent, len(b)):])
		sent = len(b)
		grew := f.grew
		f.mu.Unlock()
		if _, err := w.Write(chunk); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-grew:
		}
		f.mu.Lock()
	}
}

var _ LogFollower = (*fake)(nil)

// rpcServer serves a Handler over f on a loopback httptest server.
func rpcServer(t *testing.T, f *fake) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(f, Options{Now: func() time.Time { return time.Unix(1700003725, 0) }}))
	t.Cleanup(srv.Close)
	return srv
}

// rpcCall posts a call and decodes the reply: a value, or a *Fault.
func rpcCall(t *testing.T, url, method string, params ...any) (any, *Fault) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\"?><methodCall><methodName>" + method + "</methodName><params>")
	for _, p := range params {
		b.WriteString("<param>")
		encodeValue(&b, p)
		b.WriteString("</param>")
	}
	b.WriteString("</params></methodCall>")
	resp, err := http.Post(url+"/RPC2", "text/xml", &b)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d: %s", method, resp.StatusCode, body)
	}
	v, f, err := decodeResponse(body)
	if err != nil {
		t.Fatalf("%s: %v in %s", method, err, body)
	}
	return v, f
}

// decodeResponse parses a methodResponse with the package's own parser.
func decodeResponse(body []byte) (any, *Fault, error) {
	p := &parser{d: newStrictDecoder(bytes.NewReader(body))}
	if err := p.expect("methodResponse"); err != nil {
		return nil, nil, err
	}
	se, err := p.element()
	if err != nil {
		return nil, nil, err
	}
	switch se.Name.Local {
	case "params":
		if err := p.expect("param"); err != nil {
			return nil, nil, err
		}
		if err := p.expect("value"); err != nil {
			return nil, nil, err
		}
		v, err := p.value(1)
		return v, nil, err
	case "fault":
		if err := p.expect("value"); err != nil {
			return nil, nil, err
		}
		v, err := p.value(1)
		if err != nil {
			return nil, nil, err
		}
		m, _ := v.(map[string]any)
		code, _ := m["faultCode"].(int64)
		s, _ := m["faultString"].(string)
		if len(m) != 2 {
			return nil, nil, fmt.Errorf("fault struct %v", m)
		}
		return nil, &Fault{Code: int(code), String: s}, nil
	}
	return nil, nil, fmt.Errorf("unexpected <%s>", se.Name.Local)
}

func mustCall(t *testing.T, url, method string, params ...any) any {
	t.Helper()
	v, f := rpcCall(t, url, method, params...)
	if f != nil {
		t.Fatalf("%s(%v): fault %d %s", method, params, f.Code, f.String)
	}
	return v
}

func wantFault(t *testing.T, url string, code int, method string, params ...any) *Fault {
	t.Helper()
	_, f := rpcCall(t, url, method, params...)
	if f == nil || f.Code != code {
		t.Fatalf("%s(%v): got fault %+v, want code %d (%s)", method, params, f, code, FaultName(code))
	}
	if !strings.HasPrefix(f.String, FaultName(code)) {
		t.Errorf("%s: faultString %q does not start with %s", method, f.String, FaultName(code))
	}
	return f
}
