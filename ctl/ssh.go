package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Remote control over SSH (the convention of the Docker CLI's -H ssh://):
// each connection of a remote Client is a new `ssh HOST circlectl
// dial-stdio` process, whose stdin and stdout carry the HTTP API to the
// host's control socket. ssh does the rest: the user's ssh config, keys,
// agent, known hosts and bastions (ProxyJump) apply, and no listener is
// added on the host.

// Environment variables of remote control.
const (
	// HostEnv selects the daemon when -H is not given: ssh://[user@]host[:port].
	HostEnv = "CIRCLED_HOST"
	// SSHCommandEnv is the ssh program and options to run, split on
	// white space (no quoting), default "ssh". E.g. "ssh -F ./ssh_config".
	SSHCommandEnv = "CIRCLED_SSH_COMMAND"
	// SSHCirclectlEnv is the circlectl to run on the host, default
	// "circlectl" (found on the remote PATH). ?circlectl=PATH in the host
	// URL takes precedence.
	SSHCirclectlEnv = "CIRCLED_SSH_CIRCLECTL"
)

// sshConnectTimeout is ssh's ConnectTimeout, in seconds.
const sshConnectTimeout = 10

// SSHHost is a daemon reached over SSH: ssh://[user@]host[:port][?circlectl=PATH].
type SSHHost struct {
	User      string // "" for ssh's default (the ssh config, else the local user)
	Host      string // a host name, an address, or a Host alias of the ssh config
	Port      int    // 0 for ssh's default
	Circlectl string // the remote command, "" for $CIRCLED_SSH_CIRCLECTL or "circlectl"
}

// ParseHost parses a -H or $CIRCLED_HOST value: ssh://[user@]host[:port],
// optionally with ?circlectl=PATH, the circlectl to run on the host.
func ParseHost(s string) (*SSHHost, error) {
	bad := func(why string) error {
		return fmt.Errorf("host %q: %s (want ssh://[user@]host[:port])", s, why)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad("not a URL")
	}
	if u.Scheme != "ssh" {
		return nil, bad("only ssh:// is supported")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, bad("no path allowed")
	}
	h := &SSHHost{Host: u.Hostname()}
	if h.Host == "" || strings.HasPrefix(h.Host, "-") {
		return nil, bad("no host name")
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return nil, bad("no password allowed: use keys or ssh's prompt")
		}
		h.User = u.User.Username()
		if h.User == "" || strings.HasPrefix(h.User, "-") {
			return nil, bad("bad user name")
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad("port must be 1..65535")
		}
		h.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, bad("empty port")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("bad query")
	}
	for k, v := range q {
		if k != "circlectl" || len(v) != 1 || v[0] == "" {
			return nil, bad("the only option is ?circlectl=PATH")
		}
		h.Circlectl = v[0]
	}
	return h, nil
}

// String is ssh://[user@]host[:port], the name errors use.
func (h *SSHHost) String() string {
	u := url.URL{Scheme: "ssh", Host: h.Host}
	if h.Port != 0 {
		u.Host = net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
	} else if strings.Contains(h.Host, ":") {
		u.Host = "[" + h.Host + "]"
	}
	if h.User != "" {
		u.User = url.User(h.User)
	}
	return u.String()
}

// Command is the ssh command line that runs `circlectl [remoteArgs...]
// dial-stdio` on the host: $CIRCLED_SSH_COMMAND (default ssh), -o
// ConnectTimeout, -l USER, -p PORT, then -- HOST and the remote command,
// quoted for the remote shell.
func (h *SSHHost) Command(remoteArgs ...string) []string {
	argv := strings.Fields(os.Getenv(SSHCommandEnv))
	if len(argv) == 0 {
		argv = []string{"ssh"}
	}
	argv = append(argv, "-o", "ConnectTimeout="+strconv.Itoa(sshConnectTimeout))
	if h.User != "" {
		argv = append(argv, "-l", h.User)
	}
	if h.Port != 0 {
		argv = append(argv, "-p", strconv.Itoa(h.Port))
	}
	remote := h.Circlectl
	if remote == "" {
		remote = os.Getenv(SSHCirclectlEnv)
	}
	if remote == "" {
		remote = "circlectl"
	}
	words := []string{shellQuote(remote)}
	for _, a := range remoteArgs {
		words = append(words, shellQuote(a))
	}
	words = append(words, "dial-stdio")
	return append(argv, "--", h.Host, strings.Join(words, " "))
}

// shellQuote quotes s for a POSIX shell (ssh runs the remote command with
// the user's login shell).
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:=@%+,-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// NewSSHClient returns a client for the daemon on host: each connection
// runs `ssh ... HOST circlectl [remoteArgs...] dial-stdio` (see
// SSHHost.Command); remoteArgs are circlectl's global flags for the
// remote side, such as --socket PATH. Connections are kept alive between
// the calls of one client; Close ends them. When ssh fails (host
// unreachable, authentication failed, no circlectl or no daemon on the
// host), calls fail with an error wrapping ErrUnreachable that names the
// host and quotes ssh's stderr.
func NewSSHClient(host *SSHHost, remoteArgs ...string) *Client {
	argv := host.Command(remoteArgs...)
	name := host.String()
	return newClient(name, func(ctx context.Context) (net.Conn, error) {
		return startCommandConn(ctx, argv, name)
	})
}

// CommandError is a connection's command (ssh) that ended with a failure
// before its output did: the remote side is unreachable. It wraps
// ErrUnreachable.
type CommandError struct {
	Program string // "ssh"
	Status  string // "exit status 255", "signal: killed"
	Stderr  string // the end of its stderr, trimmed
}

func (e *CommandError) Error() string {
	msg := e.Program + " failed (" + e.Status + ")"
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	if strings.HasSuffix(e.Status, " 127") {
		msg += " (is circlectl on the remote PATH? see ?circlectl=PATH or $" + SSHCirclectlEnv + ")"
	}
	return msg
}

func (e *CommandError) Unwrap() error { return ErrUnreachable }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// String is the text, its lines trimmed and joined with "; ".
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range bytes.Split(t.b, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			lines = append(lines, string(l))
		}
	}
	return strings.Join(lines, "; ")
}

// commandConn is a net.Conn over a command's stdin and stdout.
type commandConn struct {
	cmd     *exec.Cmd
	program string
	name    string
	stdin   *os.File // our end: the command's stdin
	stdout  *os.File // our end: the command's stdout
	stderr  *tailBuffer

	done    chan struct{} // closed when the command was waited for
	waitErr error         // set before done is closed

	closing   atomic.Bool
	closeOnce sync.Once
}

// exitWait bounds how long a connection whose output ended waits for the
// command to exit, to tell a failure from an end.
const exitWait = 5 * time.Second

// startCommandConn starts argv with its stdin and stdout as the
// connection. Its stderr is kept for errors.
func startCommandConn(ctx context.Context, argv []string, name string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &commandConn{
		program: argv[0],
		name:    name,
		stdin:   inW,
		stdout:  outR,
		stderr:  &tailBuffer{max: 4 << 10},
		done:    make(chan struct{}),
	}
	// Not CommandContext: the connection outlives the dial's context.
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Stdin = inR
	c.cmd.Stdout = outW
	c.cmd.Stderr = c.stderr
	// A ControlPersist master may keep ssh's stderr open.
	c.cmd.WaitDelay = time.Second
	err = c.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// failure is the command's failure once its output ended or its input
// broke, or nil when it exited 0, is still running, or is being closed.
func (c *commandConn) failure() error {
	if c.closing.Load() {
		return nil
	}
	t := time.NewTimer(exitWait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		return nil
	}
	if c.waitErr == nil || c.closing.Load() {
		return nil
	}
	status := c.waitErr.Error()
	var ee *exec.ExitError
	if errors.As(c.waitErr, &ee) {
		status = ee.ProcessState.String()
	}
	if status == "signal: interrupt" {
		// Ctrl-C reached ssh too (same process group, so that it can
		// prompt on the terminal): circlectl is being interrupted, and
		// an end of stream is what `logs -f` expects then.
		return nil
	}
	prog := c.program
	if i := strings.LastIndexAny(prog, `/\`); i >= 0 {
		prog = prog[i+1:]
	}
	return &CommandError{Program: prog, Status: status, Stderr: c.stderr.String()}
}

func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF {
		if f := c.failure(); f != nil {
			return n, f
		}
	}
	return n, err
}

func (c *commandConn) Write(p []byte) (int, error) {
	n, err := c.stdin.Write(p)
	if err != nil {
		if f := c.failure(); f != nil {
			return n, f
		}
	}
	return n, err
}

// Close ends the command: its stdin is closed and it is killed (ssh then
// closes the session; the remote dial-stdio sees its stdin end).
func (c *commandConn) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.stdin.Close()
		c.cmd.Process.Kill()
		<-c.done
		c.stdout.Close()
	})
	return nil
}

type commandAddr string

func (a commandAddr) Network() string { return "ssh" }
func (a commandAddr) String() string  { return string(a) }

func (c *commandConn) LocalAddr() net.Addr  { return commandAddr("circlectl") }
func (c *commandConn) RemoteAddr() net.Addr { return commandAddr(c.name) }

// Deadlines apply where pipes support them (not on Windows).
func (c *commandConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	c.SetWriteDeadline(t)
	return nil
}

func (c *commandConn) SetReadDeadline(t time.Time) error {
	c.stdout.SetReadDeadline(t)
	return nil
}

func (c *commandConn) SetWriteDeadline(t time.Time) error {
	c.stdin.SetWriteDeadline(t)
	return nil
}
