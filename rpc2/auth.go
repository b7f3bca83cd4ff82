package rpc2

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
)

// BasicAuth wraps h so that every request must carry HTTP basic auth with
// username and password, as supervisord's [inet_http_server] and
// [unix_http_server] username/password do. password may be supervisor's
// "{SHA}" followed by the hex SHA-1 of the password. A request without
// credentials or with wrong ones gets 401; wrong ones are logged to log
// (warning, with the user name given and the remote address, never the
// password).
func BasicAuth(h http.Handler, username, password string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hashed := strings.HasPrefix(password, "{SHA}")
	want := sha256.Sum256([]byte(password))
	if hashed {
		want = sha256.Sum256([]byte(strings.ToLower(strings.TrimPrefix(password, "{SHA}"))))
	}
	wantUser := sha256.Sum256([]byte(username))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if ok {
			if hashed {
				s := sha1.Sum([]byte(p))
				p = hex.EncodeToString(s[:])
			}
			gotUser, got := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
			userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
			passOK := subtle.ConstantTimeCompare(got[:], want[:])
			if userOK&passOK == 1 {
				h.ServeHTTP(w, r)
				return
			}
			log.Warn("rpc2: wrong username or password", "user", u, "remote", r.RemoteAddr, "path", r.URL.Path)
		} else {
			log.Info("rpc2: request without credentials", "remote", r.RemoteAddr, "path", r.URL.Path)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="default"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	})
}
