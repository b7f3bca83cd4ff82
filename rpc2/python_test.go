package rpc2

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// pyClient drives the handler with Python's own xmlrpc.client: it prints
// one JSON document of what it saw.
const pyClient = `
import json, sys, xmlrpc.client
url, bad = sys.argv[1], sys.argv[2]
s = xmlrpc.client.ServerProxy(url)
out = {}
def fault(f):
    try:
        f()
    except xmlrpc.client.Fault as e:
        return [e.faultCode, e.faultString]
    return None
out["version"] = s.supervisor.getAPIVersion()
out["state"] = s.supervisor.getState()
out["status"] = [[i["group"], i["name"], i["statename"], i["pid"]] for i in s.supervisor.getAllProcessInfo()]
out["start_running"] = fault(lambda: s.supervisor.startProcess("web"))
out["stop"] = s.supervisor.stopProcess("web")
out["stop_again"] = fault(lambda: s.supervisor.stopProcess("web"))
out["start"] = s.supervisor.startProcess("web", True)
out["info"] = s.supervisor.getProcessInfo("web")["statename"]
out["group_stop"] = [[r["name"], r["status"], r["description"]] for r in s.supervisor.stopProcessGroup("worker")]
out["bad_name"] = fault(lambda: s.supervisor.getProcessInfo("nope"))
out["unknown"] = fault(lambda: s.supervisor.nope())
out["bad_signal"] = fault(lambda: s.supervisor.signalProcess("web", "NOPE"))
out["tail"] = s.supervisor.tailProcessStdoutLog("web", 0, 5)
m = xmlrpc.client.MultiCall(s)
m.supervisor.getPID()
m.supervisor.getProcessInfo("nope")
m.system.methodSignature("supervisor.getProcessInfo")
res = []
try:
    for r in m():
        res.append(r)
except xmlrpc.client.Fault as e:
    res.append([e.faultCode, e.faultString])
out["multicall"] = res
raw = s.system.multicall([{"methodName": "supervisor.getPID", "params": []}, {"methodName": "supervisor.getProcessInfo", "params": ["nope"]}])
out["multicall_raw"] = raw
try:
    xmlrpc.client.ServerProxy(bad).supervisor.getPID()
    out["bad_password"] = None
except xmlrpc.client.ProtocolError as e:
    out["bad_password"] = e.errcode
print(json.dumps(out))
`

func python(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 is not on PATH: cannot drive the handler with xmlrpc.client")
	}
	return py
}

func TestPythonXMLRPCClient(t *testing.T) {
	py := python(t)
	f := newFake()
	f.appendLog(LogRef{Group: "web", WID: 1, Stream: "stdout"}, "hello world\n")
	var logBuf bytes.Buffer
	h := BasicAuth(NewHandler(f, Options{}), "user", "pass", slog.New(slog.NewTextHandler(&logBuf, nil)))
	srv := httptest.NewServer(h)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(pyClient), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script, "http://user:pass@"+host+"/RPC2", "http://user:wrong@"+host+"/RPC2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]any{
		"version": "3.0",
		"state":   map[string]any{"statecode": 1.0, "statename": "RUNNING"},
		"status": []any{
			[]any{"cron", "cron", "STOPPED", 0.0},
			[]any{"web", "web", "RUNNING", 1001.0},
			[]any{"worker", "worker_1", "RUNNING", 1002.0},
			[]any{"worker", "worker_2", "RUNNING", 1003.0},
			[]any{"worker", "worker_3", "RUNNING", 1004.0},
		},
		"start_running": []any{60.0, "ALREADY_STARTED: web"},
		"stop":          true,
		"stop_again":    []any{70.0, "NOT_RUNNING: web"},
		"start":         true,
		"info":          "RUNNING",
		"group_stop": []any{
			[]any{"worker_1", 80.0, "OK"}, []any{"worker_2", 80.0, "OK"}, []any{"worker_3", 80.0, "OK"},
		},
		"bad_name":   []any{10.0, "BAD_NAME: nope"},
		"unknown":    []any{1.0, "UNKNOWN_METHOD"},
		"bad_signal": []any{11.0, "BAD_SIGNAL: NOPE"},
		"tail":       []any{"orld\n", 12.0, true},
		"multicall":  []any{4242.0, []any{10.0, "BAD_NAME: nope"}},
		"multicall_raw": []any{
			[]any{4242.0},
			map[string]any{"faultCode": 10.0, "faultString": "BAD_NAME: nope"},
		},
		"bad_password": 401.0,
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s:\n got %#v\nwant %#v", k, got[k], w)
		}
	}
	if !strings.Contains(logBuf.String(), "wrong username or password") {
		t.Errorf("the wrong password was not logged: %s", logBuf.String())
	}
}
