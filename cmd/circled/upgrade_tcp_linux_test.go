//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

// TestUpgradeTCPListeners: the TCP listeners of [inet_http_server] and
// metrics_listen cross a live upgrade as the same kernel sockets (the
// inode in /proc/net/tcp does not change), so clients connecting while
// circled executes its new binary wait in the listen queue: not one
// connection is refused. Without the hand-over the new binary binds
// again after it starts, hundreds of milliseconds in which every connect
// is refused.
func TestUpgradeTCPListeners(t *testing.T) {
	b := upgradeBinaries(t)
	inetPort, metricsPort := freePort(t), freePort(t)
	d := upStart(t, b, false, fmt.Sprintf(`inet_http_addr = 127.0.0.1:%d
metrics_listen = 127.0.0.1:%d

[watcher:sleeper]
cmd = {child} quiet {dir}/sleeper.sig sleeper
`, inetPort, metricsPort))
	urls := map[string]string{
		"inet_http_server": fmt.Sprintf("http://127.0.0.1:%d/RPC2", inetPort),
		"metrics_listen":   fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
	}
	inode0 := map[string]string{}
	for name, port := range map[string]int{"inet_http_server": inetPort, "metrics_listen": metricsPort} {
		testhelper.Poll(t, time.Minute, name+" listening", func() (bool, string) {
			inode0[name] = tcpListenInode(t, port)
			return inode0[name] != "", "no LISTEN socket on port " + strconv.Itoa(port)
		})
	}

	// Clients connect over and over (a new connection each time) while
	// the upgrade runs.
	var (
		stop                atomic.Bool
		wg                  sync.WaitGroup
		mu                  sync.Mutex
		refused, otherErrs  []string
		served, servedAfter = map[string]int{}, map[string]int{}
		upgraded            atomic.Bool
	)
	for name, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
			for !stop.Load() {
				after := upgraded.Load()
				resp, err := c.Get(url)
				mu.Lock()
				switch {
				case err == nil:
					resp.Body.Close()
					served[name]++
					if after {
						servedAfter[name]++
					}
				case errors.Is(err, syscall.ECONNREFUSED):
					refused = append(refused, name+": "+err.Error())
				default:
					// A connection the old binary had accepted when it
					// executed the new one is cut (as on the control
					// socket): counted, not a refusal.
					otherErrs = append(otherErrs, name+": "+err.Error())
				}
				mu.Unlock()
			}
		}()
	}
	testhelper.Poll(t, time.Minute, "both listeners answering before the upgrade", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return served["inet_http_server"] > 0 && served["metrics_listen"] > 0, fmt.Sprint(served)
	})
	out, errs, code := d.circlectl(3*time.Minute, "upgrade", "--binary", b.new)
	if code != 0 {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("circlectl upgrade: exit %d\nstdout: %s\nstderr: %s\nlog:\n%s", code, out, errs, d.log())
	}
	upgraded.Store(true)
	testhelper.Poll(t, time.Minute, "both listeners answering the new binary", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return servedAfter["inet_http_server"] > 2 && servedAfter["metrics_listen"] > 2, fmt.Sprint(servedAfter)
	})
	stop.Store(true)
	wg.Wait()
	if v, err := d.version(); err != nil || v.Version != upNewVersion {
		t.Fatalf("version after the upgrade: %+v, %v", v, err)
	}
	if len(refused) > 0 {
		t.Errorf("%d connections refused during the upgrade (the listeners were bound again, not handed over), first: %s", len(refused), refused[0])
	}
	t.Logf("requests served: %v (after the upgrade: %v); connections cut at the exec: %d %q", served, servedAfter, len(otherErrs), otherErrs)
	for name, port := range map[string]int{"inet_http_server": inetPort, "metrics_listen": metricsPort} {
		if got := tcpListenInode(t, port); got != inode0[name] {
			t.Errorf("%s: the listening socket changed across the upgrade (inode %s, then %s): bound again, not handed over", name, inode0[name], got)
		}
	}
	if strings.Contains(d.log(), "handed-over listener") {
		t.Errorf("circled logged a problem with a handed-over listener:\n%s", d.log())
	}
}

// tcpListenInode is the inode of the socket listening on 127.0.0.1:port
// ("" when none), from /proc/net/tcp.
func tcpListenInode(t *testing.T, port int) string {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	local := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 9 && fs[1] == local && fs[3] == "0A" { // TCP_LISTEN
			return fs[9]
		}
	}
	return ""
}
