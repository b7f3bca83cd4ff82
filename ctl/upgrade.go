package ctl

import (
	"context"
	"net/http"
)

// UpgradeRequest is the body of POST /v1/upgrade.
type UpgradeRequest struct {
	// Binary is the new circled to execute in place. "" means the path
	// the running circled was started from (resolved at its start), so
	// a package that replaced that file upgrades to it.
	Binary string `json:"binary,omitempty"`
}

// UpgradeReply is the reply of POST /v1/upgrade: the new binary passed
// its check and the running state is handed over. circled executes the
// new binary right after sending it (same pid); the client then waits
// until GET /v1/version answers with Upgrades = Upgrades of this reply.
type UpgradeReply struct {
	// Binary is the absolute path being executed.
	Binary string `json:"binary"`
	// From is the running version, To the new binary's (its
	// __upgrade-check output).
	From string `json:"from"`
	To   string `json:"to"`
	// PID is circled's pid, which does not change.
	PID int `json:"pid"`
	// Upgrades is how many live upgrades this circled process will have
	// gone through once the new binary answers (Version.Upgrades).
	Upgrades int `json:"upgrades"`
	// Format is the version of the handed-over state.
	Format int `json:"format"`
}

// UpgradeBackend is implemented by a Backend that can replace its own
// binary in place (circled on Unix).
type UpgradeBackend interface {
	// Upgrade checks req's binary and prepares the hand-over. On success
	// it returns the reply and commit, which the handler calls once the
	// reply is sent: it executes the new binary and returns only if
	// that failed (the daemon then goes on as before). An error means
	// nothing changed.
	Upgrade(ctx context.Context, req UpgradeRequest) (reply UpgradeReply, commit func(), err error)
}

func (h *handler) upgrade(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	var req UpgradeRequest
	if err := decode(r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	ub, ok := h.b.(UpgradeBackend)
	if !ok {
		h.writeError(w, r, &apiError{http.StatusNotImplemented, KindInternal, "this daemon cannot upgrade in place"})
		return
	}
	reply, commit, err := ub.Upgrade(r.Context(), req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.reply(w, r, reply, nil)
	// The reply must reach the client before the exec closes the
	// connection.
	http.NewResponseController(w).Flush()
	commit()
}

// Upgrade asks the daemon to execute a new binary in place (POST
// /v1/upgrade). It returns once the daemon accepted; WaitUpgraded then
// waits for the new binary to answer.
func (c *Client) Upgrade(ctx context.Context, req UpgradeRequest) (UpgradeReply, error) {
	var out UpgradeReply
	err := c.do(ctx, http.MethodPost, "/v1/upgrade", nil, req, &out)
	return out, err
}
