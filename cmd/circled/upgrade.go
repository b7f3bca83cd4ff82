package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/circle-supervisor/circle/ctl"
	"github.com/circle-supervisor/circle/internal/buildinfo"
	"github.com/circle-supervisor/circle/supervisor"
	"github.com/spf13/cobra"
)

// Live upgrade (issue 19): `circlectl upgrade` → POST /v1/upgrade →
// upgrader.Upgrade: NEW __upgrade-check, then the supervisor freezes
// (supervisor.PrepareUpgrade), the state goes to a memfd and circled
// executes NEW in place (upgrade_unix.go); NEW's serve reads the state
// (upgradeStateEnv) and adopts everything.

// upgradeStateEnv names the descriptor holding the handed-over state.
const upgradeStateEnv = "CIRCLED_UPGRADE_STATE"

// upgradeCheckCmd is the hidden subcommand a running circled runs on a
// new binary before it executes it.
const upgradeCheckCmd = "__upgrade-check"

// upgradeCheck is what __upgrade-check prints (one JSON line).
type upgradeCheck struct {
	Version      string `json:"version"`
	Commit       string `json:"commit"`
	GoVersion    string `json:"go_version"`
	OS           string `json:"os"`
	Arch         string `json:"arch"`
	StateFormats []int  `json:"state_formats"`
	// Handover lists what else this binary takes over besides the
	// state and the control socket (handoverTCP); absent in binaries
	// older than it, which are handed nothing more.
	Handover []string `json:"handover,omitempty"`
}

// handoverTCP: the binary takes over the TCP listeners of
// [inet_http_server] and metrics_listen (upgradeListenersEnv), so a
// client connecting during the exec waits in the kernel's queue instead
// of being refused.
const handoverTCP = "tcp_listeners"

// upgradeListenersEnv names the TCP listeners handed over:
// "inet_http_server=FD,metrics_listen=FD".
const upgradeListenersEnv = "CIRCLED_UPGRADE_LISTENERS"

// handedListeners takes the TCP listeners a previous binary of this
// process handed over out of the environment (children must not see
// it): name → descriptor.
func handedListeners() map[string]int {
	v, ok := os.LookupEnv(upgradeListenersEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(upgradeListenersEnv)
	m := map[string]int{}
	for _, kv := range strings.Split(v, ",") {
		name, num, ok := strings.Cut(kv, "=")
		fd, err := strconv.Atoi(num)
		if ok && err == nil && fd > 2 {
			m[name] = fd
		}
	}
	return m
}

// tcpListener is the listener named name that a previous binary handed
// over (removed from handed), or one made by listen.
func tcpListener(handed map[string]int, name string, listen func() (net.Listener, error)) (net.Listener, error) {
	fd, ok := handed[name]
	if !ok {
		return listen()
	}
	delete(handed, name)
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("%s: the handed-over listener: %w", name, err)
	}
	return ln, nil
}

// liveUpgrades is how many live upgrades this process went through
// (GET /metrics: circled_upgrades_total).
var liveUpgrades atomic.Int64

// startPath is the path circled was started from, resolved at start:
// once a package replaced the file, /proc/self/exe names the deleted
// old one, this path the new one.
var startPath = func() string {
	p, err := os.Executable()
	if err != nil {
		p, err = exec.LookPath(os.Args[0])
	}
	if err != nil {
		return ""
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return strings.TrimSuffix(p, " (deleted)")
}()

func newUpgradeCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:    upgradeCheckCmd,
		Short:  "print this binary's version and the upgrade state formats it reads",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := json.Marshal(upgradeCheck{Version: buildinfo.Version, Commit: buildinfo.Commit, GoVersion: buildinfo.GoVersion(),
				OS: runtime.GOOS, Arch: runtime.GOARCH, StateFormats: supervisor.UpgradeFormats, Handover: []string{handoverTCP}})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
}

// upgradeRefused is a refused upgrade: answered as a 400 with its
// message as it is; nothing changed.
type upgradeRefused struct{ msg string }

func (e upgradeRefused) Error() string        { return e.msg }
func (e upgradeRefused) Is(target error) bool { return target == ctl.ErrBadRequest }

// checkBinary runs path __upgrade-check and says why path cannot take
// over (nil: it can).
func checkBinary(ctx context.Context, path string, runCheck func(context.Context, *exec.Cmd) error) (upgradeCheck, error) {
	var c upgradeCheck
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.Command(path, upgradeCheckCmd)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = os.Environ()
	if err := runCheck(ctx, cmd); err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		if msg != "" {
			return c, fmt.Errorf("%s %s: %v: %s", path, upgradeCheckCmd, err, msg)
		}
		return c, fmt.Errorf("%s %s: %v", path, upgradeCheckCmd, err)
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if err := json.Unmarshal(line, &c); err != nil || c.Version == "" {
		return c, fmt.Errorf("%s %s: not a circled that can take over (it printed %q)", path, upgradeCheckCmd, truncate(out.String(), 200))
	}
	if !slices.Contains(c.StateFormats, supervisor.UpgradeFormat) {
		return c, fmt.Errorf("%s (circled %s) reads upgrade state formats %v; this circled (%s) hands over format %d", path, c.Version, c.StateFormats, buildinfo.Version, supervisor.UpgradeFormat)
	}
	return c, nil
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// upgrader is circled's side of POST /v1/upgrade.
type upgrader struct {
	log      *slog.Logger
	sup      *supervisor.Supervisor
	reaper   *supervisor.Reaper
	upgrades int // live upgrades this process went through

	mu      sync.Mutex
	busy    bool
	lastErr string // why the last accepted upgrade's exec failed

	// Set by serve: what the exec hands over besides the supervisor's
	// state.
	listener     listenerFiler
	tcp          map[string]listenerFiler // inet_http_server, metrics_listen
	notifySocket string
	socket       string
}

// listenerFiler is the control listener (net.UnixListener's File).
type listenerFiler interface {
	File() (*os.File, error)
}

// status is what GET /v1/version adds.
func (u *upgrader) status() (upgrades int, lastErr string) {
	if u == nil {
		return 0, ""
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.upgrades, u.lastErr
}

// resolveBinary is the binary an upgrade executes.
func resolveBinary(req string) (string, error) {
	p := req
	if p == "" {
		p = startPath
	}
	if p == "" {
		return "", errors.New("the path circled was started from is unknown: give --binary PATH")
	}
	if !filepath.IsAbs(p) {
		if strings.ContainsRune(p, filepath.Separator) {
			return "", fmt.Errorf("%s: give an absolute path", p)
		}
		lp, err := exec.LookPath(p)
		if err != nil {
			return "", err
		}
		p = lp
	}
	return p, nil
}
