package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/ctl/ctltest"
	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/internal/testhelper"
	"github.com/circle-supervisor/circle/supervisor/config"
)

// startDaemon serves f on a real socket until the test ends.
func startDaemon(t *testing.T, f ctl.Backend) string {
	t.Helper()
	sock := filepath.Join(testhelper.ShortDir(t), "c.sock")
	startDaemonAt(t, sock, 0o600, f)
	return sock
}

// startDaemonAt serves f on sock, made with mode, until the test ends.
func startDaemonAt(t *testing.T, sock string, mode os.FileMode, f ctl.Backend) {
	t.Helper()
	ln, err := ctl.Listen(sock, mode)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Serve(ctx, ln, ctl.NewHandler(f, nil)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// circlectl runs the command in-process.
func circlectl(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// commandTests are run against a fake daemon on the socket (TestCommands)
// and over ssh (TestCommandsOverSSH).
var commandTests = []struct {
	args   []string
	code   int
	call   string // the backend's last call; "" = not checked
	stdout string // substring; "" = not checked
	stderr string // substring; "" = not checked
}{
	{[]string{"status"}, 0, "Status []", "NAME", ""},
	{[]string{"status", "w*"}, 0, "Status [w*]", "worker", ""},
	{[]string{"status", "--json", "w*"}, 0, "Status [w*] descendants", `"descendants":0`, ""},
	{[]string{"status", "nope"}, 3, "", "", "no such watcher: nope"},
	{[]string{"status", "--quiet", "web"}, 0, "", "", ""},
	{[]string{"status", "--quiet"}, 1, "", "", ""},
	{[]string{"list"}, 0, "List", "web\nworker\ndb\n", ""},
	{[]string{"list", "--json"}, 0, "", `{"watchers":["web","worker","db"]}` + "\n", ""},
	{[]string{"list", "extra"}, 2, "", "", "Run 'circlectl --help'"},
	{[]string{"start"}, 0, "Start [] true", "web: started\n", ""},
	{[]string{"stop", "--no-wait", "web"}, 0, "Stop [web] false", "web: stopping\n", ""},
	{[]string{"restart", "web", "--json"}, 0, "Restart [web] true", `{"watchers":["web"]}` + "\n", ""},
	{[]string{"restart", "nope"}, 3, "", "", "no such watcher"},
	{[]string{"reload", "w*"}, 0, "Reload [w*] true", "worker: reloaded", ""},
	{[]string{"reloadconfig"}, 0, "ReloadConfig", "no changes", ""},
	{[]string{"reloadconfig", "--json"}, 0, "", `{"added":[],"removed":[],"restarted":[],"scaled":[],"updated":[],"unchanged":[]}` + "\n", ""},
	{[]string{"signal", "web", "HUP", "--pid", "3", "--children"}, 0, "Signal web HUP 3 true", "web: sent HUP", ""},
	{[]string{"signal", "web", "BOGUS"}, 1, "", "", "unknown signal"},
	{[]string{"signal", "nope", "HUP"}, 3, "", "", ""},
	{[]string{"signal", "web"}, 2, "", "", "accepts 2 arg(s)"},
	{[]string{"signal", "web", "HUP", "--pid", "abc"}, 2, "", "", "invalid argument"},
	{[]string{"incr", "web", "2"}, 0, "Incr web 2", "3\n", ""},
	{[]string{"decr", "web"}, 0, "Incr web -1", "0\n", ""},
	{[]string{"incr", "web", "0"}, 2, "", "", "positive"},
	{[]string{"incr", "web", "x"}, 2, "", "", "positive"},
	{[]string{"incr", "nope"}, 3, "", "", ""},
	{[]string{"incr", "web", "9223372036854775806"}, 1, "", "", "n must be 1..100000"},
	{[]string{"decr", "web", "100001"}, 1, "", "", "n must be 1..100000"},
	{[]string{"incr", "web", "100000"}, 1, "NumProcesses web", "", "exceed the maximum of 100000"},
	{[]string{"numprocesses", "web"}, 0, "NumProcesses web", "1\n", ""},
	{[]string{"numprocesses", "web", "--json"}, 0, "", `{"watchers":["web"],"numprocesses":1}` + "\n", ""},
	{[]string{"stats"}, 0, "Stats []", "3.0MiB", ""},
	{[]string{"stats", "web", "--json"}, 0, "", `{"watchers":[{"name":"web","processes":[{"wid":1,"pid":1000,"cpu":12.5,"rss":3145728}]}]}` + "\n", ""},
	{[]string{"quit", "--no-wait"}, 0, "Quit false", "quitting", ""},
	{[]string{"quit", "--json"}, 0, "Quit true", `{"quitting":true}` + "\n", ""},
	{[]string{"version"}, 0, "Version", "circled 1.2.3 (commit abc, go1.x, pid 42)", ""},
	{[]string{"sockets"}, 0, "Sockets", "NAME  ADDRESS  FD  WATCHERS\n", ""},
	{[]string{"sockets", "--json"}, 0, "Sockets", `{"sockets":[]}` + "\n", ""},
	{[]string{"sockets", "web"}, 2, "", "", "unknown command"},
	{[]string{"status", "--json", "web"}, 0, "", `],"sockets":[]}` + "\n", ""},
	{[]string{"logs", "web"}, 0, "Logs web 10 false ", "web.1 | line 5\nweb.1 | line 6\n", ""},
	{[]string{"logs", "web", "-n", "2", "--stream", "stdout"}, 0, "Logs web 2 false stdout", "web.1 | line 11\nweb.1 | line 12\n", ""},
	{[]string{"logs", "web", "--stream=stderr", "--lines", "1"}, 0, "Logs web 1 false stderr", "web.1 | oops 2\n", ""},
	{[]string{"logs", "nope"}, 3, "", "", "no such watcher: nope"},
	{[]string{"logs", "nope", "-f"}, 3, "", "", "no such watcher: nope"},
	{[]string{"logs", "web", "--stream", "both"}, 2, "", "", "--stream must be stdout or stderr"},
	{[]string{"logs", "web", "-n", "-1"}, 2, "", "", "-n must be 0 or more"},
	{[]string{"logs", "web", "-n", "x"}, 2, "", "", "invalid argument"},
	{[]string{"logs"}, 2, "", "", "accepts 1 arg(s)"},
	{[]string{"reopen"}, 0, "Reopen", "log files reopened\n", ""},
	{[]string{"reopen", "--json"}, 0, "Reopen", `{"reopened":true}` + "\n", ""},
	{[]string{"frobnicate"}, 2, "", "", "unknown command"},
	{[]string{"status", "--bogus"}, 2, "", "", "unknown flag"},
}

func TestCommands(t *testing.T) {
	testCommands(t, func(sock string) []string { return []string{"--socket", sock} })
}

// testCommands runs commandTests with the global flags flags(socket).
func testCommands(t *testing.T, flags func(sock string) []string) {
	for _, tt := range commandTests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := ctltest.NewFake("web", "worker", "db:fatal")
			sock := startDaemon(t, f)
			code, stdout, stderr := circlectl(append(flags(sock), tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if tt.call != "" && f.LastCall() != tt.call {
				t.Errorf("backend call %q, want %q", f.LastCall(), tt.call)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.stderr)
			}
			if code == 0 && stderr != "" {
				t.Errorf("exit 0 with stderr %q", stderr)
			}
			if code != 0 && code != 1 && stderr == "" {
				t.Errorf("exit %d without a message", code)
			}
		})
	}
}

// status --json is byte for byte the daemon's GET /v1/watchers document.
func TestStatusJSONIsTheDaemonDocument(t *testing.T) {
	sock := startDaemon(t, ctltest.NewFake("web", "worker", "db:fatal"))
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := hc.Get("http://circled/v1/watchers")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	code, got, stderr := circlectl("--socket", sock, "status", "--json")
	if code != 0 || got != string(want) {
		t.Fatalf("exit %d (%s)\ngot  %s\nwant %s", code, stderr, got, want)
	}
	var doc struct {
		Watchers []struct {
			Name         string `json:"name"`
			State        string `json:"state"`
			NumProcesses int    `json:"numprocesses"`
			Processes    []struct {
				WID       int       `json:"wid"`
				PID       int       `json:"pid"`
				State     string    `json:"state"`
				StartedAt time.Time `json:"started_at"`
				Restarts  int       `json:"restarts"`
				LastExit  struct {
					Code   int    `json:"code"`
					Signal string `json:"signal"`
				} `json:"last_exit"`
			} `json:"processes"`
		} `json:"watchers"`
	}
	if err := json.Unmarshal([]byte(got), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Watchers) != 3 || doc.Watchers[0].Name != "web" || doc.Watchers[0].Processes[0].PID != 1000 ||
		doc.Watchers[2].State != "fatal" {
		t.Errorf("unexpected document %+v", doc)
	}
}

func TestStatusTable(t *testing.T) {
	sock := startDaemon(t, ctltest.NewFake("web", "db:fatal"))
	code, out, _ := circlectl("--socket", sock, "status")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 lines, got:\n%s", out)
	}
	for i, want := range [][]string{
		{"NAME", "STATE", "PIDS", "UPTIME", "RESTARTS", "LAST-EXIT", "ERROR"},
		{"web", "active", "1000", "", "0", "-", "-"},
		{"db", "fatal", "-", "-", "3", "exit", "1", "exec:"},
	} {
		fields := strings.Fields(lines[i])
		for j, w := range want {
			if w != "" && (j >= len(fields) || fields[j] != w) {
				t.Errorf("line %d = %q, want field %d = %q", i, lines[i], j, w)
			}
		}
	}
}

func TestUnreachable(t *testing.T) {
	sock := filepath.Join(testhelper.ShortDir(t), "none.sock")
	// status --quiet too: it has no verdict to give, so it exits 4 like
	// every other command, with the error on stderr (issue 20 §5).
	for _, args := range [][]string{{"status"}, {"status", "--quiet"}, {"restart", "web"}, {"version"}, {"logs", "web", "-f"}, {"reopen"}} {
		code, stdout, stderr := circlectl(append([]string{"--socket", sock}, args...)...)
		if code != 4 || !strings.Contains(stderr, sock) {
			t.Errorf("%v: exit %d, stderr %q; want 4 naming %s", args, code, stderr, sock)
		}
		if args[0] == "version" && !strings.HasPrefix(stdout, "circlectl ") {
			t.Errorf("version without a daemon printed %q, want the client version", stdout)
		}
		if args[0] == "status" && stdout != "" {
			t.Errorf("%v without a daemon printed %q on stdout", args, stdout)
		}
	}
	code, stdout, _ := circlectl("--socket", sock, "version", "--json")
	var v versions
	if code != 4 || json.Unmarshal([]byte(stdout), &v) != nil || v.Client.Version == "" || v.Daemon != nil {
		t.Errorf("version --json unreachable: exit %d, %q", code, stdout)
	}
	code, stdout, _ = circlectl("--socket", sock, "reloadconfig", "--json")
	var sum ctl.ReloadSummary
	if code != 4 || json.Unmarshal([]byte(stdout), &sum) != nil || !strings.Contains(sum.Error, sock) {
		t.Errorf("reloadconfig --json unreachable: exit %d, %q", code, stdout)
	}
}

func TestVersionJSON(t *testing.T) {
	sock := startDaemon(t, ctltest.NewFake("web"))
	code, stdout, _ := circlectl("--socket", sock, "version", "--json")
	var v versions
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || v.Daemon == nil || v.Daemon.Version != "1.2.3" {
		t.Errorf("exit %d, %q", code, stdout)
	}
}

func TestReloadConfigBadConfig(t *testing.T) {
	f := ctltest.NewFake("web")
	f.ReloadErr = fmt.Errorf("%w: /etc/circled.ini:3: [watcher:x] cmd: required key is missing", ctl.ErrBadConfig)
	sock := startDaemon(t, f)
	code, stdout, stderr := circlectl("--socket", sock, "reloadconfig")
	if code != 1 || !strings.Contains(stderr, "/etc/circled.ini:3") || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// --json always prints a document: empty lists and the error.
	code, stdout, stderr = circlectl("--socket", sock, "reloadconfig", "--json")
	var doc ctl.ReloadSummary
	if code != 1 || json.Unmarshal([]byte(stdout), &doc) != nil || !strings.Contains(doc.Error, "/etc/circled.ini:3") ||
		!strings.Contains(stderr, "/etc/circled.ini:3") {
		t.Errorf("--json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, `{"added":[],"removed":[],"restarted":[],"scaled":[],"updated":[],"unchanged":[],"error":`) {
		t.Errorf("--json document %q: want every list present and empty", stdout)
	}
}

// A reload that applied but left watchers down reports each and exits 1.
func TestReloadConfigFailedWatchers(t *testing.T) {
	f := ctltest.NewFake("web")
	f.Summary = ctl.ReloadSummary{Restarted: []string{"web", "db"}, Unchanged: []string{"ok"},
		Failed: map[string]string{"db": "db is fatal: spawn failed 1 times: exec: no such file"}}
	sock := startDaemon(t, f)
	code, stdout, stderr := circlectl("--socket", sock, "reloadconfig")
	if code != 1 || stdout != "restarted: web, db\nfailed: db: db is fatal: spawn failed 1 times: exec: no such file\n" ||
		stderr != "circlectl: 1 watcher failed to apply: db\n" {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	code, stdout, _ = circlectl("--socket", sock, "reloadconfig", "--json")
	var doc ctl.ReloadSummary
	if code != 1 || json.Unmarshal([]byte(stdout), &doc) != nil || doc.Error != "1 watcher failed to apply: db" ||
		!strings.Contains(doc.Failed["db"], "fatal") || len(doc.Restarted) != 2 {
		t.Errorf("--json: exit %d, %q", code, stdout)
	}
}

func TestSocketFromConfig(t *testing.T) {
	sock := startDaemon(t, ctltest.NewFake("web"))
	ini := filepath.Join(testhelper.ShortDir(t), "circled.ini")
	if err := os.WriteFile(ini, []byte("[circled]\nsocket = "+sock+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ctl.SocketEnv, filepath.Join(testhelper.ShortDir(t), "wrong.sock"))
	if code, _, stderr := circlectl("-c", ini, "list"); code != 0 {
		t.Errorf("-c with [circled] socket: exit %d, %s", code, stderr)
	}
	t.Setenv(ctl.SocketEnv, sock)
	if code, _, stderr := circlectl("list"); code != 0 {
		t.Errorf("$CIRCLED_SOCKET: exit %d, %s", code, stderr)
	}
}

func TestCheck(t *testing.T) {
	dir := testhelper.ShortDir(t)
	good := filepath.Join(dir, "good.ini")
	bad := filepath.Join(dir, "bad.ini")
	os.WriteFile(good, []byte("[watcher:web]\ncmd = sleep 100\nnumprocesses = 2\n"), 0o644)
	os.WriteFile(bad, []byte("[watcher:web]\nnumprocesses = x\nbogus = 1\n"), 0o644)

	code, out, stderr := circlectl("check", "-c", good)
	if code != 0 || !strings.Contains(out, "web") {
		t.Errorf("good config: exit %d\n%s%s", code, out, stderr)
	}
	code, _, stderr = circlectl("check", "-c", bad)
	if code != 1 || strings.Count(stderr, "error: ") != 3 {
		t.Errorf("bad config: exit %d, want 1 and 3 errors\n%s", code, stderr)
	}
	code, out, _ = circlectl("check", "-c", bad, "--json")
	var r checkReport
	if code != 1 || json.Unmarshal([]byte(out), &r) != nil || r.Valid || len(r.Errors) != 3 {
		t.Errorf("bad config --json: exit %d, %s", code, out)
	}
	if code, _, _ := circlectl("check"); code != 2 {
		t.Errorf("check without -c: exit %d, want 2", code)
	}
}

func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{fmt.Errorf("x: %w", ctl.ErrNoSuchWatcher), 3},
		{fmt.Errorf("x: %w", ctl.ErrUnreachable), 4},
		{fmt.Errorf("x: %w", ctl.ErrBadConfig), 1},
		{&ctl.Error{Kind: ctl.KindNoSuchWatcher, Message: "no such watcher: x"}, 3},
		{errors.New("boom"), 1},
		{usageErrorf("bad"), 2},
	}
	for _, tt := range tests {
		var ee *exitError
		if !errors.As(withCode(tt.err), &ee) || ee.code != tt.code {
			t.Errorf("%v: code %v, want %d", tt.err, ee, tt.code)
		}
	}
}

// circlectl links only ctl, supervisor/config, internal/buildinfo and
// libraries, never the supervisor or the watcher.
func TestDeps(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/circle-supervisor/circle/"
	allowed := map[string]bool{mod + "ctl": true, mod + "supervisor/config": true, mod + "internal/buildinfo": true, mod + "cmd/circlectl": true}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, mod) && !allowed[p] {
			t.Errorf("circlectl depends on %s", p)
		}
	}
}

// The API's bound on processes per watcher is the config's (ctl cannot
// import supervisor/config; circlectl links both).
func TestMaxProcessesIsTheConfigBound(t *testing.T) {
	if ctl.MaxProcesses != config.MaxProcesses {
		t.Fatalf("ctl.MaxProcesses = %d, config.MaxProcesses = %d: keep them equal", ctl.MaxProcesses, config.MaxProcesses)
	}
}

// CLI polish (issue 20 §8): a shell completion has no script for is a
// usage error; --version prints the client line of `version`.
func TestCompletionAndVersionFlag(t *testing.T) {
	code, stdout, stderr := circlectl("completion", "tcsh")
	if code != 2 || stdout != "" || !strings.Contains(stderr, `no completion script for shell "tcsh" (shells: bash, fish, powershell, zsh)`) {
		t.Errorf("completion tcsh: exit %d, stdout %q, stderr %q; want a usage error", code, stdout, stderr)
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if code, stdout, stderr := circlectl("completion", sh); code != 0 || !strings.Contains(stdout, "circlectl") || stderr != "" {
			t.Errorf("completion %s: exit %d, stderr %q", sh, code, stderr)
		}
	}
	if code, stdout, _ := circlectl("completion"); code != 0 || !strings.Contains(stdout, "Available Commands") {
		t.Errorf("completion: exit %d, %q; want its help", code, stdout)
	}

	code, stdout, stderr = circlectl("--version")
	if code != 0 || stderr != "" || stdout != buildinfo.String("circlectl")+"\n" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// The same line as `version` prints first (here without a daemon).
	_, vout, _ := circlectl("--socket", filepath.Join(testhelper.ShortDir(t), "none.sock"), "version")
	if first, _, _ := strings.Cut(vout, "\n"); first+"\n" != stdout {
		t.Errorf("--version %q, version's first line %q", stdout, first)
	}
}

func TestDecrHelp(t *testing.T) {
	_, out, _ := circlectl("decr", "--help")
	if !strings.Contains(out, "Remove N processes (default 1) from watcher NAME") {
		t.Errorf("decr --help:\n%s", out)
	}
	_, out, _ = circlectl("incr", "--help")
	if !strings.Contains(out, "Add N processes (default 1) to watcher NAME") {
		t.Errorf("incr --help:\n%s", out)
	}
}
