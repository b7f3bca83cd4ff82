package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// pipeUsers holds SIDs granted the control pipe besides SYSTEM,
// Administrators and the current user (see AllowPipeUser).
var pipeUsers struct {
	sync.Mutex
	sids []string
}

// AllowPipeUser grants the user with this SID (S-1-5-...) access to the
// control pipe of the next Listen. circled's service mode uses it for the
// user who installed the service, since the service itself runs as SYSTEM.
func AllowPipeUser(sid string) error {
	if _, err := windows.StringToSid(sid); err != nil {
		return fmt.Errorf("ctl: pipe user %q: %w", sid, err)
	}
	pipeUsers.Lock()
	defer pipeUsers.Unlock()
	pipeUsers.sids = append(pipeUsers.sids, sid)
	return nil
}

// CurrentUserSID is the SID of the user this process runs as.
func CurrentUserSID() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", err
	}
	return u.User.Sid.String(), nil
}

// pipeSDDL is the pipe's security descriptor: a protected DACL granting
// full access to SYSTEM, the Administrators group and each of sids only.
func pipeSDDL(sids []string) string {
	var b strings.Builder
	b.WriteString("D:P(A;;GA;;;SY)(A;;GA;;;BA)")
	seen := map[string]bool{"S-1-5-18": true, "S-1-5-32-544": true}
	for _, s := range sids {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		b.WriteString("(A;;GA;;;" + s + ")")
	}
	return b.String()
}

// listen opens the named pipe. A pipe that a live daemon answers is
// ErrSocketInUse; a named pipe disappears with its process, so nothing
// can be stale.
func listen(path string, _ os.FileMode) (net.Listener, error) {
	pipe, ok := pipePath(path)
	if !ok {
		return nil, &notPipeError{path}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	c, err := winio.DialPipeContext(ctx, pipe)
	cancel()
	if err == nil {
		c.Close()
		return nil, socketInUse(pipe)
	}
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		// It exists, and it is not ours to use.
		return nil, socketInUse(pipe)
	}
	sids := []string{}
	if me, err := CurrentUserSID(); err == nil {
		sids = append(sids, me)
	}
	pipeUsers.Lock()
	sids = append(sids, pipeUsers.sids...)
	pipeUsers.Unlock()
	return winio.ListenPipe(pipe, &winio.PipeConfig{SecurityDescriptor: pipeSDDL(sids)})
}
