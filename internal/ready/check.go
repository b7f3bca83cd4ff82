package ready

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Kind names a kind of check, as in the config keys ready.KIND and
// health.KIND.
type Kind string

// The kinds of check. Health checks may only be KindTCP, KindHTTP or
// KindExec.
const (
	KindTCP    Kind = "tcp"
	KindHTTP   Kind = "http"
	KindExec   Kind = "exec"
	KindLog    Kind = "log"
	KindNotify Kind = "notify"
)

// Command is the command line of an exec check, with everything the
// process needs: the caller fills Env, Dir and SysProcAttr (Credential for
// the watcher's uid/gid/groups, Setpgid) as it does for the watcher's own
// processes.
type Command struct {
	Argv        []string
	Env         []string // nil: circled's environment
	Dir         string
	SysProcAttr *syscall.SysProcAttr
}

// Cmd builds the exec.Cmd for c. A program name without a path separator
// is looked up in the PATH of c.Env (circled's own PATH when c.Env has
// none), as the watcher does for its processes. The caller must start it
// without calling Wait: on Unix only circled's reaper waits.
func (c Command) Cmd() (*exec.Cmd, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return nil, errors.New("empty command")
	}
	path, err := lookPath(c.Argv[0], c.Env)
	if err != nil {
		return nil, err
	}
	return &exec.Cmd{
		Path:        path,
		Args:        append([]string(nil), c.Argv...),
		Env:         c.Env,
		Dir:         c.Dir,
		SysProcAttr: c.SysProcAttr,
	}, nil
}

// String is the command line, for messages.
func (c Command) String() string { return strings.Join(c.Argv, " ") }

func lookPath(file string, env []string) (string, error) {
	if strings.ContainsAny(file, `/\`) {
		return file, nil
	}
	pathList, found := "", false
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && (k == "PATH" || strings.EqualFold(k, "PATH") && os.PathListSeparator == ';') {
			pathList, found = v, true
			break
		}
	}
	if !found {
		pathList = os.Getenv("PATH")
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		if p, err := exec.LookPath(filepath.Join(dir, file)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH", file)
}

// StartFunc starts cmd and returns a channel that receives its exit code
// (0 for success; anything else, e.g. 128+N for signal N or -1, is a
// failure) once the process has ended, and a function that kills it (its
// whole process group, preferably). The channel must be buffered, or be
// closed, so the sender never blocks: the check stops listening when it
// times out or is cancelled, after calling kill. A closed channel without
// a value counts as a failure.
//
// On Unix the watcher implements it over its Spawner (the reaper is the
// only caller of wait4); tests may use exec.Cmd.Wait.
type StartFunc func(cmd *exec.Cmd) (exit <-chan int, kill func(), err error)

// Check is one readiness or liveness check. Build it with TCP, HTTP, Exec,
// Log or NotifyReady.
type Check struct {
	Kind   Kind
	Target string // HOST:PORT, URL, command line, regular expression or notify socket address

	cmd    Command
	start  StartFunc
	re     *regexp.Regexp
	notify *NotifySocket
}

// TCP passes when a TCP connection to addr (HOST:PORT) succeeds.
func TCP(addr string) Check { return Check{Kind: KindTCP, Target: addr} }

// HTTP passes when a GET of url answers 2xx or 3xx. Redirects are not
// followed; at most 64 KiB of the body is read.
func HTTP(url string) Check { return Check{Kind: KindHTTP, Target: url} }

// Exec passes when cmd, started through start, exits 0.
func Exec(cmd Command, start StartFunc) Check {
	return Check{Kind: KindExec, Target: cmd.String(), cmd: cmd, start: start}
}

// Log passes once a line given to Prober.FeedLine matches expr (RE2
// syntax; the line has no trailing newline). Readiness only.
func Log(expr string) (Check, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return Check{}, fmt.Errorf("ready.log: %w", err)
	}
	return Check{Kind: KindLog, Target: expr, re: re}, nil
}

// NotifyReady passes when the process sends READY=1 to n. Readiness only.
func NotifyReady(n *NotifySocket) Check {
	return Check{Kind: KindNotify, Target: n.Addr(), notify: n}
}

// String is "KIND TARGET", for messages.
func (c Check) String() string { return string(c.Kind) + " " + c.Target }

// polled reports whether c is attempted on a timer (tcp, http, exec).
func (c Check) polled() bool {
	return c.Kind == KindTCP || c.Kind == KindHTTP || c.Kind == KindExec
}

func (c Check) validate(health bool) error {
	switch c.Kind {
	case KindTCP, KindHTTP:
		if c.Target == "" {
			return fmt.Errorf("%s check without a target", c.Kind)
		}
		if c.Kind == KindHTTP {
			req, err := http.NewRequest(http.MethodGet, c.Target, nil)
			if err != nil {
				return fmt.Errorf("http check: %w", err)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("http check %q: want an http:// or https:// URL", c.Target)
			}
		}
	case KindExec:
		if len(c.cmd.Argv) == 0 {
			return errors.New("exec check without a command")
		}
		if c.start == nil {
			return errors.New("exec check without a StartFunc")
		}
	case KindLog, KindNotify:
		if health {
			return fmt.Errorf("%s is no liveness check", c.Kind)
		}
		if c.Kind == KindLog && c.re == nil {
			return errors.New("log check without a regular expression")
		}
		if c.Kind == KindNotify && c.notify == nil {
			return errors.New("notify check without a notify socket")
		}
	default:
		return fmt.Errorf("unknown check kind %q", c.Kind)
	}
	return nil
}

// maxBody bounds what an http check reads of a response body.
const maxBody = 64 << 10

// attempt runs one attempt of a polled check, bounded by ctx.
func (c Check) attempt(ctx context.Context) error {
	switch c.Kind {
	case KindTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.Target)
		if err != nil {
			return err
		}
		conn.Close()
		return nil
	case KindHTTP:
		return httpGet(ctx, c.Target)
	case KindExec:
		return c.runExec(ctx)
	}
	return fmt.Errorf("%s cannot be attempted", c.Kind)
}

// httpTransport keeps no idle connections, so nothing is left of an
// attempt once it returns, and uses no proxy.
var httpTransport = &http.Transport{
	Proxy:              nil,
	DisableKeepAlives:  true,
	DisableCompression: true,
	DialContext:        (&net.Dialer{}).DialContext,
	ForceAttemptHTTP2:  false,
}

var httpClient = &http.Client{
	Transport: httpTransport,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func httpGet(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "circled-check")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func (c Check) runExec(ctx context.Context) error {
	cmd, err := c.cmd.Cmd()
	if err != nil {
		return err
	}
	exit, kill, err := c.start(cmd)
	if err != nil {
		return err
	}
	select {
	case code, ok := <-exit:
		switch {
		case !ok:
			return errors.New("exited without a status")
		case code != 0:
			return fmt.Errorf("exit status %d", code)
		}
		return nil
	case <-ctx.Done():
		if kill != nil {
			kill()
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errors.New("timed out: killed")
		}
		return ctx.Err()
	}
}

// withDefault returns d when v is not positive.
func withDefault(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}
