//go:build linux

package main

// Issue 17 §1 and §2 against the real circled and circlectl binaries
// (built by TestMain in script_test.go), a real Prometheus server and
// promtool (Debian's prometheus package, installed when missing by
// packaging/test-deps-prometheus.sh).

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/testhelper"
)

// needPrometheus makes sure prometheus and promtool are installed, or
// skips saying why.
func needPrometheus(t *testing.T) {
	t.Helper()
	_, e1 := exec.LookPath("prometheus")
	_, e2 := exec.LookPath("promtool")
	if e1 == nil && e2 == nil {
		return
	}
	out, err := exec.Command("../../packaging/test-deps-prometheus.sh").CombinedOutput()
	t.Logf("packaging/test-deps-prometheus.sh: %s", out)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 2:
		t.Skipf("no prometheus/promtool: %s", strings.TrimSpace(string(out)))
	case err != nil:
		t.Fatalf("packaging/test-deps-prometheus.sh: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// socketClient is an HTTP client over circled's control socket.
func socketClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

func httpGet(t *testing.T, c *http.Client, u string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// pidsOf returns the pids of a watcher's running processes.
func (p *circledProc) pidsOf(name string) []int {
	p.t.Helper()
	out := p.mustCtl("status", "--json", name)
	var st ctl.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		p.t.Fatalf("status --json: %v\n%s", err, out)
	}
	var pids []int
	for _, w := range st.Watchers {
		for _, pr := range w.Processes {
			if pr.State == "running" && pr.PID > 0 {
				pids = append(pids, pr.PID)
			}
		}
	}
	return pids
}

// /metrics on the control socket: circled's metrics, Go's and the
// process's, and promtool check metrics says nothing about them.
func TestMetricsOnSocketPassPromtool(t *testing.T) {
	needPrometheus(t)
	dir := t.TempDir()
	p := startCircled(t, dir, `
[watcher:web]
cmd = sleep 1000
numprocesses = 2

[watcher:crasher]
cmd = sh -c "sleep 0.2; exit 3"
`)
	p.up()
	c := socketClient(p.socket)
	var body string
	testhelper.Poll(t, 20*time.Second, "web running and crasher's exits in /metrics", func() (bool, string) {
		var code int
		code, body = httpGet(t, c, "http://circled/metrics")
		return code == 200 &&
			strings.Contains(body, `circled_watcher_state{state="active",watcher="web"} 1`) &&
			strings.Contains(body, `circled_watcher_processes{kind="running",watcher="web"} 2`) &&
			strings.Contains(body, `circled_process_exits_total{code="3",signal="",watcher="crasher"}`), body
	})
	for _, want := range []string{
		"circled_build_info{", "circled_process_start_time_seconds{watcher=\"web\",wid=\"2\"}",
		"circled_process_ready{watcher=\"web\",wid=\"1\"} 1", "circled_process_resident_memory_bytes{watcher=\"web\",wid=\"1\"}",
		"circled_process_cpu_seconds_total{watcher=\"web\",wid=\"1\"}", "circled_process_restarts_total{reason=\"crash\",watcher=\"crasher\"}",
		"circled_log_dropped_bytes_total{watcher=\"web\"} 0", "circled_config_reloads_total{result=\"success\"} 0",
		"circled_config_last_reload_success_timestamp_seconds ", "go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	// A reload is counted.
	p.mustCtl("reloadconfig")
	if _, body = httpGet(t, c, "http://circled/metrics"); !strings.Contains(body, `circled_config_reloads_total{result="success"} 1`) {
		t.Fatalf("reload not counted:\n%s", body)
	}
}

// A real Prometheus scrapes metrics_listen; a child killed shows up as
// a crash restart in Prometheus's query API.
func TestPrometheusSeesRestart(t *testing.T) {
	needPrometheus(t)
	dir := t.TempDir()
	mport := freePort(t)
	p := startCircled(t, dir, fmt.Sprintf(`
[circled]
metrics_listen = 127.0.0.1:%d

[watcher:web]
cmd = sleep 1000
`, mport))
	p.up()
	pport := freePort(t)
	promCfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(promCfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: circled
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, mport)), 0o644)
	prom := exec.Command("prometheus", "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", pport), "--log.level=warn")
	promOut := &testhelper.SyncBuffer{}
	prom.Stdout, prom.Stderr = promOut, promOut
	prom.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	promDone := make(chan struct{})
	go func() { prom.Wait(); close(promDone) }()
	t.Cleanup(func() {
		prom.Process.Signal(syscall.SIGTERM)
		select {
		case <-promDone:
		case <-time.After(10 * time.Second):
			prom.Process.Kill()
			<-promDone
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", promOut)
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second}
	query := func(q string) (string, string) {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", pport, url.QueryEscape(q)))
		if err != nil {
			return "", err.Error()
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value []any
				}
			}
		}
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &r) != nil || r.Status != "success" || len(r.Data.Result) != 1 || len(r.Data.Result[0].Value) != 2 {
			return "", string(b)
		}
		v, _ := r.Data.Result[0].Value[1].(string)
		return v, string(b)
	}
	const restarts = `circled_process_restarts_total{job="circled",watcher="web",reason="crash"}`
	testhelper.Poll(t, 60*time.Second, "Prometheus to scrape circled (restarts 0)", func() (bool, string) {
		v, desc := query(restarts)
		return v == "0", desc
	})
	pids := p.pidsOf("web")
	if len(pids) != 1 {
		t.Fatalf("web's pids = %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testhelper.Poll(t, 60*time.Second, "Prometheus to see the crash restart", func() (bool, string) {
		v, desc := query(restarts)
		return v == "1", desc
	})
	testhelper.Poll(t, 30*time.Second, "Prometheus to see the exit by KILL", func() (bool, string) {
		v, desc := query(`circled_process_exits_total{watcher="web",signal="KILL"}`)
		return v == "1", desc
	})
}

// metrics_web_config: basic auth with a bcrypt hash, as Prometheus's
// exporters do; a wrong password or none is refused.
func TestMetricsWebConfigBasicAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := filepath.Join(dir, "web.yml")
	os.WriteFile(web, []byte("basic_auth_users:\n  prom: "+string(hash)+"\n"), 0o600)
	mport := freePort(t)
	p := startCircled(t, dir, fmt.Sprintf(`
[circled]
metrics_listen = 127.0.0.1:%d
metrics_web_config = web.yml

[watcher:web]
cmd = sleep 1000
`, mport))
	p.up()
	u := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(user, pass string) (int, string) {
		req, _ := http.NewRequest("GET", u, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: status %d, want 401", code)
	}
	if code, _ := get("prom", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", code)
	}
	if code, _ := get("other", "s3cret"); code != http.StatusUnauthorized {
		t.Errorf("unknown user: status %d, want 401", code)
	}
	code, body := get("prom", "s3cret")
	if code != 200 || !strings.Contains(body, `circled_watcher_state{state="active",watcher="web"}`) {
		t.Fatalf("right password: status %d\n%s", code, body)
	}

	// A web config that does not parse stops circled from starting.
	os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("basic_auth_users: [\n"), 0o600)
	q := startCircled(t, t.TempDir(), fmt.Sprintf(`
[circled]
metrics_listen = 127.0.0.1:%d
metrics_web_config = %s
`, freePort(t), filepath.Join(dir, "bad.yml")))
	if code := q.exit(); code != 1 || !strings.Contains(q.out.String(), "metrics_web_config") {
		t.Fatalf("bad web config: exit %d, want 1 naming metrics_web_config:\n%s", code, q.out)
	}
}

// eventLines runs circlectl events with args and sends its lines.
func (p *circledProc) eventLines(ctx context.Context, args ...string) <-chan string {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "circlectl"), append([]string{"--socket", p.socket, "events"}, args...)...)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	out, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ch <- sc.Text():
			case <-ctx.Done():
			}
		}
		cmd.Wait()
	}()
	return ch
}

func nextLine(t *testing.T, ch <-chan string, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("circlectl events ended")
		}
		return l
	case <-time.After(d):
		t.Fatalf("no event line within %s", d)
	}
	return ""
}

// circlectl events: a crash loop is seen as exit and spawn events;
// --since replays; names filter; the text form is one aligned line each.
func TestEventsCrashLoop(t *testing.T) {
	dir := t.TempDir()
	p := startCircled(t, dir, `
[watcher:crasher]
cmd = sh -c "sleep 0.1; exit 7"
check_flapping = false

[watcher:calm]
cmd = sleep 1000
`)
	p.up()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := p.eventLines(ctx, "--json", "cr*")
	var spawns, exits int
	for spawns < 2 || exits < 2 {
		var ev ctl.Event
		l := nextLine(t, lines, 20*time.Second)
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if ev.Watcher != "crasher" {
			t.Fatalf("filter cr* let through %q", l)
		}
		switch ev.Type {
		case "spawn":
			spawns++
			if ev.PID <= 0 || ev.WID != 1 {
				t.Fatalf("spawn without pid or wid: %q", l)
			}
		case "exit":
			exits++
			if ev.Code == nil || *ev.Code != 7 || ev.Signal != "" {
				t.Fatalf("exit without code 7: %q", l)
			}
		}
	}
	cancel()

	// --since replays the kept events: calm's first spawn (from before
	// this second subscription) is the first spawn. A state event may come
	// before it (calm "starting", when the observer saw the watcher before
	// its process).
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	text := p.eventLines(ctx2, "--since", "1h", "calm")
	for {
		line := nextLine(t, text, 20*time.Second)
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == "state" && f[3] == "calm" {
			continue
		}
		if len(f) < 5 || f[2] != "spawn" || f[3] != "calm.1" {
			t.Fatalf("first replayed line after calm's state events = %q, want calm.1's spawn (date time type watcher.wid pid)", line)
		}
		break
	}
	// And the raw API: a bad since is a 400.
	code, body := httpGet(t, socketClient(p.socket), "http://circled/v1/events?since=yesterday")
	if code != 400 || !strings.Contains(body, "RFC 3339") {
		t.Fatalf("since=yesterday: %d %s", code, body)
	}
}

// A consumer that stops reading during a crash loop gets a lost event
// when it reads again; circled and other consumers go on meanwhile.
func TestEventsStuckConsumerGetsLost(t *testing.T) {
	dir := t.TempDir()
	p := startCircled(t, dir, `
[watcher:churn]
cmd = true
numprocesses = 4
min_uptime = 0
check_flapping = false
`)
	p.up()
	// The stuck consumer: reads the reply's headers, then nothing.
	conn, err := net.Dial("unix", p.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/events?watcher=churn HTTP/1.1\r\nHost: circled\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
	}
	// A consumer that keeps reading sees the loop go on well past what
	// the stuck one's socket and buffer hold.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := p.eventLines(ctx, "--json", "churn")
	const enough = 10000 // several times what the stuck socket (about 200 KiB) and buffer (256) hold
	for n := 0; n < enough; n++ {
		l := nextLine(t, live, 20*time.Second)
		if strings.Contains(l, `"type":"lost"`) {
			t.Fatalf("the reading consumer lost events: %s", l)
		}
		if n == enough/2 {
			// circled answers while a consumer is stuck.
			start := time.Now()
			p.mustCtl("status", "churn")
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("status took %s while a consumer was stuck", d)
			}
		}
	}
	p.mustCtl("stop", "churn")
	cancel()
	// The stuck consumer reads again: a lost event with the count.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev ctl.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		if ev.Type == "lost" {
			if ev.Count <= 0 {
				t.Fatalf("lost without a count: %s", sc.Text())
			}
			t.Logf("the stuck consumer lost %d events", ev.Count)
			return
		}
	}
	t.Fatalf("no lost event: %v", sc.Err())
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns the certificate pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "circled test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// metrics_web_config with tls_server_config: metrics_listen speaks
// HTTPS only (with basic auth on top).
func TestMetricsWebConfigTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	os.WriteFile(filepath.Join(dir, "web.yml"), []byte(fmt.Sprintf(
		"tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prom: %s\n", certFile, keyFile, hash)), 0o600)
	mport := freePort(t)
	p := startCircled(t, dir, fmt.Sprintf(`
[circled]
metrics_listen = 127.0.0.1:%d
metrics_web_config = web.yml

[watcher:web]
cmd = sleep 1000
`, mport))
	p.up()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/metrics", mport), nil)
	req.SetBasicAuth("prom", "pw")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "circled_build_info") {
		t.Fatalf("https with the password: %d\n%s", resp.StatusCode, b)
	}
	// Plain HTTP gets no metrics.
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "circled_") {
			t.Fatalf("plain http answered %d:\n%s", resp.StatusCode, b)
		}
	}
}

// A follower of the events does not hold circled up: quit ends its
// stream (circlectl events exits 0) and circled exits.
func TestEventsEndWhenCircledQuits(t *testing.T) {
	p := startCircled(t, t.TempDir(), `
[watcher:calm]
cmd = sleep 1000
`)
	p.up()
	cmd := exec.Command(filepath.Join(binDir, "circlectl"), "--socket", p.socket, "events", "--since", "1h")
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=10")
	out := &testhelper.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	testhelper.Poll(t, 20*time.Second, "the replayed spawn", func() (bool, string) {
		return strings.Contains(out.String(), "spawn"), out.String()
	})
	p.mustCtl("quit")
	if code := p.exit(); code != 0 {
		t.Fatalf("circled exited %d:\n%s", code, p.out)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("circlectl events: %v\n%s", err, out)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("circlectl events still running after circled quit:\n%s", out)
	}
}
