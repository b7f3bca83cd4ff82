package rpc2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProcessInfo(t *testing.T) {
	f := newFake()
	srv := rpcServer(t, f)
	all := mustCall(t, srv.URL, "supervisor.getAllProcessInfo").([]any)
	var names []string
	for _, v := range all {
		m := v.(map[string]any)
		names = append(names, m["group"].(string)+":"+m["name"].(string))
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		want := []string{"description", "exitstatus", "group", "logfile", "name", "now", "pid", "spawnerr", "start",
			"state", "statename", "stderr_logfile", "stdout_logfile", "stop"}
		if !reflect.DeepEqual(keys, want) {
			t.Fatalf("fields %v, want supervisor's %v", keys, want)
		}
	}
	if want := []string{"cron:cron", "web:web", "worker:worker_1", "worker:worker_2", "worker:worker_3"}; !reflect.DeepEqual(names, want) {
		t.Errorf("processes %v, want %v", names, want)
	}
	web := mustCall(t, srv.URL, "supervisor.getProcessInfo", "web").(map[string]any)
	if web["statename"] != "RUNNING" || web["state"] != int64(20) || web["pid"] != int64(1001) {
		t.Errorf("web: %v", web)
	}
	if d := web["description"]; d != "pid 1001, uptime 1:02:05" {
		t.Errorf("web description %q", d)
	}
	cron := mustCall(t, srv.URL, "supervisor.getProcessInfo", "cron:cron").(map[string]any)
	if cron["statename"] != "STOPPED" || cron["description"] != "Not started" || cron["pid"] != int64(0) {
		t.Errorf("cron: %v", cron)
	}
	wantFault(t, srv.URL, FaultBadName, "supervisor.getProcessInfo", "nope")
	wantFault(t, srv.URL, FaultBadName, "supervisor.getProcessInfo", "worker")
	wantFault(t, srv.URL, FaultBadName, "supervisor.getProcessInfo", "worker:*")
	wantFault(t, srv.URL, FaultIncorrectParameters, "supervisor.getProcessInfo")
	wantFault(t, srv.URL, FaultIncorrectParameters, "supervisor.getProcessInfo", 12)
	w2 := mustCall(t, srv.URL, "supervisor.getProcessInfo", "worker:worker_2").(map[string]any)
	if w2["statename"] != "RUNNING" {
		t.Errorf("worker_2: %v", w2)
	}
}

func TestDaemonMethods(t *testing.T) {
	f := newFake()
	srv := rpcServer(t, f)
	for m, want := range map[string]any{
		"supervisor.getAPIVersion":        "3.0",
		"supervisor.getVersion":           "3.0",
		"supervisor.getSupervisorVersion": "1.2.3",
		"supervisor.getIdentification":    "supervisor",
		"supervisor.getPID":               int64(4242),
	} {
		if got := mustCall(t, srv.URL, m); got != want {
			t.Errorf("%s = %v, want %v", m, got, want)
		}
	}
	st := mustCall(t, srv.URL, "supervisor.getState").(map[string]any)
	if st["statecode"] != int64(1) || st["statename"] != "RUNNING" {
		t.Errorf("getState %v", st)
	}
	wantFault(t, srv.URL, FaultUnknownMethod, "supervisor.nope")
	wantFault(t, srv.URL, FaultUnknownMethod, "supervisor.startProcess.__class__")
	wantFault(t, srv.URL, FaultFailed, "supervisor.restart")
	if mustCall(t, srv.URL, "supervisor.shutdown") != true {
		t.Error("shutdown")
	}
	st = mustCall(t, srv.URL, "supervisor.getState").(map[string]any)
	if st["statecode"] != int64(-1) || st["statename"] != "SHUTDOWN" {
		t.Errorf("getState after shutdown %v", st)
	}
	wantFault(t, srv.URL, FaultShutdownState, "supervisor.startProcess", "cron")
}

func TestStartStop(t *testing.T) {
	f := newFake()
	srv := rpcServer(t, f)
	wantFault(t, srv.URL, FaultAlreadyStarted, "supervisor.startProcess", "web")
	wantFault(t, srv.URL, FaultNotRunning, "supervisor.stopProcess", "cron")
	wantFault(t, srv.URL, FaultBadName, "supervisor.startProcess", "nope:*")
	if mustCall(t, srv.URL, "supervisor.startProcess", "cron") != true {
		t.Fatal("start cron")
	}
	if mustCall(t, srv.URL, "supervisor.stopProcess", "web:web", false) != true {
		t.Fatal("stop web")
	}
	res := mustCall(t, srv.URL, "supervisor.stopProcessGroup", "worker").([]any)
	if len(res) != 3 || res[0].(map[string]any)["status"] != int64(FaultSuccess) || res[0].(map[string]any)["description"] != "OK" {
		t.Fatalf("stopProcessGroup: %v", res)
	}
	// One process of a multi-process watcher: the backend says no.
	f2 := wantFault(t, srv.URL, FaultFailed, "supervisor.startProcess", "worker:worker_2")
	if !strings.Contains(f2.String, "not supported") {
		t.Errorf("fault %q", f2.String)
	}
	res = mustCall(t, srv.URL, "supervisor.startProcess", "worker:*").([]any)
	if len(res) != 3 {
		t.Fatalf("start worker:* %v", res)
	}
	res = mustCall(t, srv.URL, "supervisor.stopAllProcesses").([]any)
	if len(res) != 4 { // web was stopped already
		t.Fatalf("stopAll %v", res)
	}
	// Reverse start order: cron (last) first.
	if g := res[0].(map[string]any)["group"]; g != "cron" {
		t.Errorf("stopAll began with %v", g)
	}
	if res := mustCall(t, srv.URL, "supervisor.stopAllProcesses").([]any); len(res) != 0 {
		t.Errorf("second stopAll: %v", res)
	}
	res = mustCall(t, srv.URL, "supervisor.startAllProcesses", true).([]any)
	if len(res) != 5 {
		t.Fatalf("startAll %v", res)
	}
	info := mustCall(t, srv.URL, "supervisor.getProcessInfo", "web").(map[string]any)
	if info["statename"] != "RUNNING" {
		t.Errorf("web after startAll: %v", info)
	}
}

func TestSpawnError(t *testing.T) {
	f := newFake()
	f.mu.Lock()
	g, _ := f.group("cron")
	g.spawnErr = "exec: /bin/cron: no such file"
	f.mu.Unlock()
	srv := rpcServer(t, f)
	// start with wait=false reports success: the failure shows in the state.
	if mustCall(t, srv.URL, "supervisor.startProcess", "cron", false) != true {
		t.Error("start nowait")
	}
	f.mu.Lock()
	g.want, g.slots = false, map[int]*Process{}
	f.mu.Unlock()
	wantFault(t, srv.URL, FaultSpawnError, "supervisor.startProcess", "cron")
	info := mustCall(t, srv.URL, "supervisor.getProcessInfo", "cron").(map[string]any)
	if info["statename"] != "FATAL" || info["spawnerr"] != g.spawnErr || info["description"] != g.spawnErr {
		t.Errorf("cron: %v", info)
	}
}

func TestStoppedDescription(t *testing.T) {
	f := newFake()
	srv := rpcServer(t, f)
	mustCall(t, srv.URL, "supervisor.stopProcess", "web")
	info := mustCall(t, srv.URL, "supervisor.getProcessInfo", "web").(map[string]any)
	want := time.Unix(1700000100, 0).Local().Format("Jan 02 03:04 PM")
	if info["statename"] != "STOPPED" || info["description"] != want || info["exitstatus"] != int64(-1) || info["stop"] != int64(1700000100) {
		t.Errorf("web stopped: %v", info)
	}
}

func TestSignal(t *testing.T) {
	f := newFake()
	srv := rpcServer(t, f)
	if mustCall(t, srv.URL, "supervisor.signalProcess", "web", "usr1") != true {
		t.Fatal("signal")
	}
	mustCall(t, srv.URL, "supervisor.signalProcess", "web")            // HUP
	mustCall(t, srv.URL, "supervisor.signalProcess", "web", int64(15)) // a number
	res := mustCall(t, srv.URL, "supervisor.signalProcessGroup", "worker", "SIGTERM").([]any)
	if len(res) != 3 {
		t.Fatalf("group: %v", res)
	}
	wantFault(t, srv.URL, FaultBadSignal, "supervisor.signalProcess", "web", "BOGUS")
	wantFault(t, srv.URL, FaultBadSignal, "supervisor.signalProcess", "web", int64(0))
	wantFault(t, srv.URL, FaultNotRunning, "supervisor.signalProcess", "cron", "HUP")
	wantFault(t, srv.URL, FaultBadName, "supervisor.signalProcess", "nope", "HUP")
	res = mustCall(t, srv.URL, "supervisor.signalAllProcesses", "INT").([]any)
	if len(res) != 4 {
		t.Fatalf("all: %v", res)
	}
	f.mu.Lock()
	got := slices.Clone(f.signals)
	f.mu.Unlock()
	want := []string{"web/1001/USR1", "web/1001/HUP", "web/1001/15", "worker/1002/TERM", "worker/1003/TERM", "worker/1004/TERM",
		"web/1001/INT", "worker/1002/INT", "worker/1003/INT", "worker/1004/INT"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("signals\n got %v\nwant %v", got, want)
	}
}

func TestReloadAndUpdate(t *testing.T) {
	f := newFake()
	f.reload = Changes{Added: []string{"cron"}, Changed: []string{"worker"}, Removed: []string{"old"}}
	srv := rpcServer(t, f)
	got := mustCall(t, srv.URL, "supervisor.reloadConfig")
	want := []any{[]any{[]any{"cron"}, []any{"worker"}, []any{"old"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reloadConfig = %v, want %v", got, want)
	}
	// supervisorctl update's sequence, which circle already applied.
	mustCall(t, srv.URL, "supervisor.stopProcessGroup", "old")
	mustCall(t, srv.URL, "supervisor.removeProcessGroup", "old")
	mustCall(t, srv.URL, "supervisor.stopProcessGroup", "worker")
	mustCall(t, srv.URL, "supervisor.removeProcessGroup", "worker")
	mustCall(t, srv.URL, "supervisor.addProcessGroup", "worker")
	mustCall(t, srv.URL, "supervisor.addProcessGroup", "cron")
	info := mustCall(t, srv.URL, "supervisor.getProcessInfo", "worker:worker_1").(map[string]any)
	if info["statename"] != "RUNNING" {
		t.Errorf("worker was stopped by the update sequence: %v", info)
	}
	// Acknowledged once only.
	wantFault(t, srv.URL, FaultAlreadyAdded, "supervisor.addProcessGroup", "cron")
	wantFault(t, srv.URL, FaultBadName, "supervisor.removeProcessGroup", "old")
	wantFault(t, srv.URL, FaultBadName, "supervisor.addProcessGroup", "nope")
	wantFault(t, srv.URL, FaultStillRunning, "supervisor.removeProcessGroup", "web")

	f.mu.Lock()
	f.reloadE = fmt.Errorf("%w: circle.ini:3: bad key", ErrBadConfig)
	f.mu.Unlock()
	fl := wantFault(t, srv.URL, FaultCantReread, "supervisor.reloadConfig")
	if !strings.Contains(fl.String, "circle.ini:3") {
		t.Errorf("fault %q", fl.String)
	}
}

func TestConfigInfo(t *testing.T) {
	srv := rpcServer(t, newFake())
	all := mustCall(t, srv.URL, "supervisor.getAllConfigInfo").([]any)
	if len(all) != 5 {
		t.Fatalf("%d entries", len(all))
	}
	c := all[0].(map[string]any)
	if c["name"] != "cron" || c["inuse"] != true || c["autostart"] != false || c["group_prio"] != int64(30) || c["command"] != "/bin/cron" {
		t.Errorf("cron config %v", c)
	}
}

func TestLogs(t *testing.T) {
	f := newFake()
	srv := rpcServer(t, f)
	ref := LogRef{Group: "web", WID: 1, Stream: "stdout"}
	f.appendLog(ref, "0123456789abcdefghij")
	if got := mustCall(t, srv.URL, "supervisor.readProcessStdoutLog", "web", int64(-5), int64(0)); got != "fghij" {
		t.Errorf("read -5: %q", got)
	}
	if got := mustCall(t, srv.URL, "supervisor.readProcessStdoutLog", "web", int64(2), int64(3)); got != "234" {
		t.Errorf("read 2,3: %q", got)
	}
	if got := mustCall(t, srv.URL, "supervisor.readProcessLog", "web", int64(15), int64(0)); got != "fghij" {
		t.Errorf("read 15,0: %q", got)
	}
	wantFault(t, srv.URL, FaultBadArguments, "supervisor.readProcessStdoutLog", "web", int64(-5), int64(2))
	wantFault(t, srv.URL, FaultBadArguments, "supervisor.readProcessStdoutLog", "web", int64(1), int64(-2))
	wantFault(t, srv.URL, FaultNoFile, "supervisor.readProcessStderrLog", "web", int64(0), int64(0))
	wantFault(t, srv.URL, FaultBadName, "supervisor.readProcessStdoutLog", "nope", int64(0), int64(0))
	wantFault(t, srv.URL, FaultIncorrectParameters, "supervisor.readProcessStdoutLog", "web", "0", int64(0))

	tail := func(off, n int64) []any {
		return mustCall(t, srv.URL, "supervisor.tailProcessStdoutLog", "web", off, n).([]any)
	}
	if got := tail(0, 5); !reflect.DeepEqual(got, []any{"fghij", int64(20), true}) {
		t.Errorf("tail 0,5: %v", got)
	}
	// supervisor moves a window that would pass the end back to it.
	if got := tail(18, 5); !reflect.DeepEqual(got, []any{"fghij", int64(20), false}) {
		t.Errorf("tail 18,5: %v", got)
	}
	if got := tail(20, 5); !reflect.DeepEqual(got, []any{"", int64(20), false}) {
		t.Errorf("tail 20,5: %v", got)
	}
	if got := mustCall(t, srv.URL, "supervisor.tailProcessStderrLog", "web", int64(0), int64(5)); !reflect.DeepEqual(got, []any{"", int64(0), false}) {
		t.Errorf("tail stderr: %v", got)
	}
	f.appendLog(LogRef{}, "main log line\n")
	if got := mustCall(t, srv.URL, "supervisor.readLog", int64(-100), int64(0)); got != "main log line\n" {
		t.Errorf("readLog %q", got)
	}
	if got := mustCall(t, srv.URL, "supervisor.tailLog", int64(0), int64(4)); !reflect.DeepEqual(got, []any{"ine\n", int64(14), true}) {
		t.Errorf("tailLog %v", got)
	}
	mustCall(t, srv.URL, "supervisor.clearProcessLogs", "worker:worker_2")
	res := mustCall(t, srv.URL, "supervisor.clearAllProcessLogs").([]any)
	if len(res) != 5 {
		t.Errorf("clearAll %v", res)
	}
	mustCall(t, srv.URL, "supervisor.clearLog")
	f.mu.Lock()
	if f.cleared[0] != (LogRef{Group: "worker", WID: 2}) || len(f.cleared) != 7 {
		t.Errorf("cleared %v", f.cleared)
	}
	f.mu.Unlock()
}

// refTail is supervisor's tailFile, transcribed, over a log of size sz.
func refTail(sz, offset, length int64) (from, n, newOff int64, overflow bool) {
	if sz > offset+length {
		overflow = true
		offset = sz - 1
	}
	if offset+length > sz {
		if offset > sz-1 {
			length = 0
		}
		offset = sz - length
	}
	offset, length = max(offset, 0), max(length, 0)
	n = min(length, max(sz-offset, 0))
	return offset, n, sz, overflow
}

func TestTailMatchesSupervisor(t *testing.T) {
	f := newFake()
	h := NewHandler(f, Options{})
	log := "abcdefghijklmnopqrstuvwxyz"
	ref := LogRef{Group: "web", WID: 1, Stream: "stdout"}
	for sz := int64(0); sz <= int64(len(log)); sz += 5 {
		f.mu.Lock()
		f.logs[ref] = []byte(log[:sz])
		f.mu.Unlock()
		for off := int64(-3); off <= sz+3; off++ {
			for n := int64(-1); n <= 12; n++ {
				got, err := h.tailFile(context.Background(), ref, off, n)
				if err != nil {
					t.Fatal(err)
				}
				from, cnt, newOff, ov := refTail(sz, off, n)
				want := []any{[]byte(log[from : from+cnt]), newOff, ov}
				if string(got[0].([]byte)) != string(want[0].([]byte)) || got[1] != want[1] || got[2] != want[2] {
					t.Fatalf("size %d tail(%d, %d) = %q %v %v, want %q %v %v", sz, off, n, got[0], got[1], got[2], want[0], want[1], want[2])
				}
			}
		}
	}
}

func TestSystemMethods(t *testing.T) {
	srv := rpcServer(t, newFake())
	ms := mustCall(t, srv.URL, "system.listMethods").([]any)
	var names []string
	for _, m := range ms {
		names = append(names, m.(string))
	}
	for _, want := range []string{"supervisor.getAllProcessInfo", "supervisor.tailProcessStderrLog", "system.multicall", "supervisor.getVersion"} {
		if !slices.Contains(names, want) {
			t.Errorf("listMethods lacks %s", want)
		}
	}
	if !slices.IsSorted(names) {
		t.Error("listMethods not sorted")
	}
	sig := mustCall(t, srv.URL, "system.methodSignature", "supervisor.startProcess")
	if !reflect.DeepEqual(sig, []any{"boolean", "string", "boolean"}) {
		t.Errorf("signature %v", sig)
	}
	if h := mustCall(t, srv.URL, "system.methodHelp", "supervisor.getState").(string); !strings.Contains(h, "state") {
		t.Errorf("help %q", h)
	}
	wantFault(t, srv.URL, FaultSignatureUnsupported, "system.methodHelp", "nope.nope")
	wantFault(t, srv.URL, FaultSignatureUnsupported, "system.methodSignature", "nope.nope")
}

func TestMulticall(t *testing.T) {
	srv := rpcServer(t, newFake())
	calls := []any{
		map[string]any{"methodName": "supervisor.getAPIVersion", "params": []any{}},
		map[string]any{"methodName": "supervisor.getProcessInfo", "params": []any{"nope"}},
		map[string]any{"methodName": "system.multicall", "params": []any{[]any{}}},
		map[string]any{"params": []any{}},
		"not a struct",
		map[string]any{"methodName": "supervisor.getPID"},
	}
	res := mustCall(t, srv.URL, "system.multicall", calls).([]any)
	if len(res) != 6 {
		t.Fatalf("%v", res)
	}
	if !reflect.DeepEqual(res[0], []any{"3.0"}) || !reflect.DeepEqual(res[5], []any{int64(4242)}) {
		t.Errorf("results %v", res)
	}
	for i, code := range map[int]int{1: FaultBadName, 2: FaultIncorrectParameters, 3: FaultIncorrectParameters, 4: FaultIncorrectParameters} {
		m, ok := res[i].(map[string]any)
		if !ok || m["faultCode"] != int64(code) {
			t.Errorf("result %d: %v, want fault %d", i, res[i], code)
		}
	}
	wantFault(t, srv.URL, FaultIncorrectParameters, "system.multicall", "x")
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"/RPC2", "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadRequests(t *testing.T) {
	srv := rpcServer(t, newFake())
	nest := strings.Repeat("<value><array><data>", MaxDepth+1) + strings.Repeat("</data></array></value>", MaxDepth+1)
	for name, body := range map[string]string{
		"empty":       "",
		"not xml":     "hello",
		"dtd":         `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><methodCall><methodName>system.listMethods</methodName></methodCall>`,
		"entity":      `<methodCall><methodName>&a;</methodName></methodCall>`,
		"no name":     `<methodCall><methodName></methodName></methodCall>`,
		"too deep":    `<methodCall><methodName>system.listMethods</methodName><params><param>` + nest + `</param></params></methodCall>`,
		"bad int":     `<methodCall><methodName>x</methodName><params><param><value><int>1e3</int></value></param></params></methodCall>`,
		"big i4":      `<methodCall><methodName>x</methodName><params><param><value><i4>4294967296</i4></value></param></params></methodCall>`,
		"bad type":    `<methodCall><methodName>x</methodName><params><param><value><object/></value></param></params></methodCall>`,
		"trailing":    `<methodCall><methodName>x</methodName></methodCall><methodCall/>`,
		"pi":          `<methodCall><?php x?><methodName>x</methodName></methodCall>`,
		"latin1":      `<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>x</methodName></methodCall>`,
		"unclosed":    `<methodCall><methodName>x</methodName>`,
		"namespace":   `<methodCall xmlns:a="u"><a:methodName>x</a:methodName></methodCall>`,
		"mixed value": `<methodCall><methodName>x</methodName><params><param><value>a<int>1</int></value></param></params></methodCall>`,
	} {
		if code, body := post(t, srv.URL, body); code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d %s, want 400", name, code, body)
		}
	}
	big := `<methodCall><methodName>x</methodName><params><param><value>` + strings.Repeat("a", MaxBody) + `</value></param></params></methodCall>`
	if code, _ := post(t, srv.URL, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: HTTP %d, want 413", code)
	}
	resp, err := http.Get(srv.URL + "/RPC2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /RPC2: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = http.Post(srv.URL+"/other", "text/xml", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/other: %d", resp.StatusCode)
	}
	// Untyped values are strings; params may be omitted; types decode.
	code, out := post(t, srv.URL, `<?xml version="1.0"?><!-- c --><methodCall><methodName>system.methodHelp</methodName><params><param><value>supervisor.getPID</value></param></params></methodCall>`)
	if code != 200 || !strings.Contains(out, "PID") {
		t.Errorf("untyped string: %d %s", code, out)
	}
	code, out = post(t, srv.URL, `<methodCall><methodName>supervisor.getPID</methodName></methodCall>`)
	if code != 200 || !strings.Contains(out, "<int>4242</int>") {
		t.Errorf("no params: %d %s", code, out)
	}
}

func TestCodecTypes(t *testing.T) {
	body := `<?xml version="1.0"?><methodCall><methodName>m</methodName><params>
<param><value><i4>-7</i4></value></param>
<param><value><i8>8589934592</i8></value></param>
<param><value><boolean>1</boolean></value></param>
<param><value><double>2.5</double></value></param>
<param><value><dateTime.iso8601>20240102T03:04:05</dateTime.iso8601></value></param>
<param><value><base64>aGk=</base64></value></param>
<param><value><nil/></value></param>
<param><value><struct><member><name>k</name><value><string>a&amp;b</string></value></member></struct></value></param>
<param><value><array><data><value><int>1</int></value><value>x</value></data></array></value></param>
<param><value></value></param>
</params></methodCall>`
	c, err := decodeCall(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(-7), int64(8589934592), true, 2.5, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), []byte("hi"), nil,
		map[string]any{"k": "a&b"}, []any{int64(1), "x"}, ""}
	if !reflect.DeepEqual(c.Params, want) {
		t.Errorf("params\n got %#v\nwant %#v", c.Params, want)
	}
	// Encoding round-trips through the decoder, and invalid XML
	// characters in strings (log bytes) are replaced, never emitted.
	var b bytes.Buffer
	encodeValue(&b, []any{"\x00\x1b[1m\xff ok", int64(5), true, 1.5, map[string]any{"a": []string{"x"}}, nil})
	p := &parser{d: newStrictDecoder(strings.NewReader(b.String()))}
	if err := p.expect("value"); err != nil {
		t.Fatal(err)
	}
	v, err := p.value(1)
	if err != nil {
		t.Fatalf("%v in %s", err, b.String())
	}
	if got := v.([]any)[0].(string); got != "\uFFFD\uFFFD[1m\uFFFD ok" {
		t.Errorf("escaped %q", got)
	}
}

func TestBasicAuth(t *testing.T) {
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	h := BasicAuth(NewHandler(newFake(), Options{}), "admin", "s3cret", logger)
	srvH := http.Handler(h)
	do := func(user, pass string, set bool) int {
		req, _ := http.NewRequest("POST", "/RPC2", strings.NewReader(`<methodCall><methodName>supervisor.getPID</methodName></methodCall>`))
		if set {
			req.SetBasicAuth(user, pass)
		}
		rec := &recorder{h: http.Header{}}
		srvH.ServeHTTP(rec, req)
		return rec.code
	}
	if c := do("admin", "s3cret", true); c != 200 {
		t.Errorf("right password: %d", c)
	}
	if c := do("admin", "wrong", true); c != 401 {
		t.Errorf("wrong password: %d", c)
	}
	if c := do("", "", false); c != 401 {
		t.Errorf("no credentials: %d", c)
	}
	if !strings.Contains(logBuf.String(), "wrong username or password") || !strings.Contains(logBuf.String(), "user=admin") || strings.Contains(logBuf.String(), "wrong\"") {
		t.Errorf("log: %s", logBuf.String())
	}
	// supervisor's {SHA} form.
	h2 := BasicAuth(NewHandler(newFake(), Options{}), "u", "{SHA}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", nil) // sha1("test")
	srvH = h2
	if c := do("u", "test", true); c != 200 {
		t.Errorf("{SHA} password: %d", c)
	}
	if c := do("u", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", true); c != 401 {
		t.Errorf("the hash itself as password: %d", c)
	}
}

type recorder struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(p)
}
func (r *recorder) WriteHeader(c int) { r.code = c }

func TestLogtail(t *testing.T) {
	f := newFake()
	srv := rpcServer(t, f)
	ref := LogRef{Group: "web", WID: 1, Stream: "stdout"}
	f.appendLog(ref, strings.Repeat("x", 2000)+"first\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/logtail/web/stdout", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	buf := make([]byte, followTail)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(buf), "first\n") {
		t.Errorf("backlog %q", buf[len(buf)-20:])
	}
	f.appendLog(ref, "second\n")
	buf = make([]byte, len("second\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "second\n" {
		t.Errorf("followed %q %v", buf, err)
	}
	for path, code := range map[string]int{"/logtail/nope": 404, "/logtail/web/other": 404} {
		r, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != code {
			t.Errorf("%s: %d", path, r.StatusCode)
		}
	}
}

func TestErrorsMapToFaults(t *testing.T) {
	h := NewHandler(newFake(), Options{})
	for err, code := range map[error]int{
		fmt.Errorf("x: %w", ErrNoSuchGroup): FaultBadName,
		fmt.Errorf("x: %w", ErrSpawn):       FaultSpawnError,
		fmt.Errorf("x: %w", ErrNotRunning):  FaultNotRunning,
		ErrShuttingDown:                     FaultShutdownState,
		fmt.Errorf("x: %w", ErrNotExec):     FaultNotExecutable,
		fmt.Errorf("x: %w", ErrBadSignal):   FaultBadSignal,
		errors.New("disk on fire"):          FaultFailed,
		fmt.Errorf("x: %w", ErrUnsupported): FaultFailed,
		fmt.Errorf("x: %w", ErrNoLog):       FaultNoFile,
		fmt.Errorf("x: %w", ErrBadConfig):   FaultCantReread,
		newFault(FaultAlreadyAdded, "x"):    FaultAlreadyAdded,
	} {
		if f := h.toFault(err); f.Code != code {
			t.Errorf("%v -> %d, want %d", err, f.Code, code)
		}
	}
}

func TestServes(t *testing.T) {
	for p, want := range map[string]bool{"/RPC2": true, "/logtail/web": true, "/mainlogtail": true, "/v1/watchers": false, "/RPC2/x": false} {
		if Serves(p) != want {
			t.Errorf("Serves(%q) = %v", p, !want)
		}
	}
}
