package config

import (
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
)

// socketSection records a [socket:NAME] section (pass one); its keys are
// read by resolveSockets once every file is known.
func (l *loader) socketSection(s *srcSection, name string) {
	sec := "[" + s.name + "]"
	if !posixProcessAttrs {
		l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: sec, Msg: "sockets held by circled are not supported on " + runtime.GOOS})
		return
	}
	if err := CheckWatcherName(name); err != nil {
		l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: sec, Msg: "socket name: " + strings.Replace(err.Error(), "watcher name", "name", 1)})
		return
	}
	if strings.Contains(name, ":") {
		l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: sec, Msg: fmt.Sprintf("socket name %q may not contain ':' (it separates the names in LISTEN_FDNAMES)", name)})
		return
	}
	for _, o := range l.socketSecs {
		if _, on := classify(o.name); on == name {
			l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: sec,
				Msg: fmt.Sprintf("socket %q is already defined at %s:%d", name, o.file.path, o.line)})
			return
		}
	}
	if len(l.socketSecs) >= MaxSockets {
		l.errs = append(l.errs, &Error{File: s.file.path, Line: s.line, Key: sec, Msg: fmt.Sprintf("more than %d sockets", MaxSockets)})
		return
	}
	l.socketSecs = append(l.socketSecs, s)
}

// resolveSockets reads every [socket:NAME] section; the sockets without
// errors are returned sorted by name and kept in l.sockets for the
// watchers' $(circle.sockets.NAME).
func (l *loader) resolveSockets() []Socket {
	l.sockets = map[string]Socket{}
	var out []Socket
	for _, s := range l.socketSecs {
		if sk, ok := l.resolveSocket(s); ok {
			l.sockets[sk.Name] = sk
			out = append(out, sk)
		}
	}
	slices.SortFunc(out, func(a, b Socket) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (l *loader) resolveSocket(s *srcSection) (Socket, bool) {
	nerr := len(l.errs)
	_, name := classify(s.name)
	sk := Socket{Name: name, File: s.file.path, Line: s.line, Umask: -1}
	for _, k := range socketTable {
		if k.Default != "" {
			if err := k.set(l, &sk, k.Default); err != nil {
				panic("config: bad default of socket " + k.Name + ": " + err.Error())
			}
		}
	}
	keys := map[string]srcKey{}
	for _, k := range s.keys {
		lk := strings.ToLower(k.name)
		sk2, ok := socketByName[lk]
		if !ok {
			l.errorf(s, k.line, k.name, "%s", unknownMsg("key", lk, candidates(SocketKeys())))
			continue
		}
		if prev, ok := keys[sk2.Name]; ok {
			l.errorf(s, k.line, k.name, "%s is already set at line %d", sk2.Name, prev.line)
			continue
		}
		keys[sk2.Name] = k
		l.warnInlineComment(s, k, false, false)
		ex := &expander{layers: []map[string]string{l.globalEnv(), l.environ}}
		v, err := ex.expand(k.value)
		if err == nil {
			if len(sk2.OS) > 0 && !slices.Contains(sk2.OS, runtime.GOOS) {
				err = errOnlyOn(sk2.OS)
			} else {
				err = sk2.set(l, &sk, strings.TrimSpace(v))
			}
		}
		if err != nil {
			l.errorf(s, k.line, k.name, "%v", err)
		}
	}
	fam, famSet := keys["family"]
	switch {
	case sk.Path != "":
		if famSet && sk.Family != "AF_UNIX" {
			l.errorf(s, fam.line, fam.name, "%s with path (line %d): a path is a unix socket (AF_UNIX)", sk.Family, keys["path"].line)
		}
		sk.Family = "AF_UNIX"
		for _, n := range []string{"host", "port"} {
			if k, ok := keys[n]; ok {
				l.warnf(s, k.line, k.name, "ignored: path (line %d) makes this a unix socket", keys["path"].line)
			}
		}
		sk.Host, sk.Port = "", 0
		if k, ok := keys["interface"]; ok {
			l.errorf(s, k.line, k.name, "a unix socket (path) has no network interface")
		}
	case famSet && sk.Family == "AF_UNIX":
		l.errorf(s, fam.line, fam.name, "AF_UNIX needs path")
	default:
		ip := net.ParseIP(sk.Host)
		if !famSet {
			sk.Family = "AF_INET"
			if ip != nil && ip.To4() == nil {
				sk.Family = "AF_INET6"
			}
		}
		if ip != nil {
			if v4 := ip.To4() != nil; v4 != (sk.Family == "AF_INET") {
				k := keys["host"]
				l.errorf(s, k.line, k.name, "address %s is not of family %s", sk.Host, sk.Family)
			}
		}
		if k, ok := keys["umask"]; ok {
			l.warnf(s, k.line, k.name, "ignored: umask applies to unix sockets (path)")
			sk.Umask = -1
		}
		if k, ok := keys["replace"]; ok && sk.Replace {
			l.warnf(s, k.line, k.name, "ignored: replace applies to unix sockets (path)")
			sk.Replace = false
		}
	}
	return sk, len(l.errs) == nerr
}

// globalEnv is the variables of the [env] sections (not [env:PATTERNS]),
// for $(circle.env.X) in socket sections (circus's env_everywhere).
// Values that do not expand are left out: the watchers report them.
func (l *loader) globalEnv() map[string]string {
	if l.genv != nil {
		return l.genv
	}
	m := map[string]string{}
	l.genv = m
	for _, e := range l.envs {
		if !strings.EqualFold(strings.TrimSpace(e.name), "env") {
			continue
		}
		for _, k := range e.keys {
			ex := &expander{layers: []map[string]string{m, l.environ}, shellVars: true}
			if v, err := ex.expand(k.value); err == nil {
				m[k.name] = v
			}
		}
	}
	return m
}
