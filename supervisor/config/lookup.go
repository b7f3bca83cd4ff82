package config

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// maxID is the largest valid uid/gid: (uid_t)-1 means "unchanged" to the
// kernel.
const maxID int64 = 1<<32 - 2

func defaultLookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	return fromOSUser(u)
}

func defaultLookupUserID(uid int) (*User, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return nil, err
	}
	return fromOSUser(u)
}

func defaultLookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

func defaultLookupGroupID(gid int) (string, error) {
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	if err != nil {
		return "", err
	}
	return g.Name, nil
}

// passwdFile is read for a user's login shell, which os/user does not
// expose.
var passwdFile = "/etc/passwd"

func fromOSUser(u *user.User) (*User, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("invalid uid %q", u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("invalid primary gid %q", u.Gid)
	}
	r := &User{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir, Shell: loginShell(u.Username, u.Uid)}
	// GroupIds is getgrouplist (cgo) or a scan of /etc/group (pure Go):
	// the primary group, then the groups that list the user.
	ids, err := u.GroupIds()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// No /etc/group at all means no memberships; anything else must
		// not silently cost (or leave) a group.
		return nil, fmt.Errorf("listing the groups of %s: %v", u.Username, err)
	}
	for _, s := range ids {
		g, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("listing the groups of %s: invalid gid %q", u.Username, s)
		}
		if g != gid {
			r.Groups = append(r.Groups, g)
		}
	}
	return r, nil
}

// loginShell reads the shell field of name's /etc/passwd entry; "/bin/sh"
// (what login(1) uses for an empty field) when there is none.
func loginShell(name, uid string) string {
	f, err := os.Open(passwdFile)
	if err != nil {
		return "/bin/sh"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:UID:GID:GECOS:directory:shell
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) == 7 && fields[0] == name && fields[2] == uid {
			if fields[6] != "" {
				return fields[6]
			}
			break
		}
	}
	return "/bin/sh"
}

// lookupUser resolves the uid key: a login name, or a number. A number
// without a passwd entry yields (nil, n, nil).
func (l *loader) lookupUser(v string) (*User, int, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 || int64(n) > maxID {
			return nil, 0, fmt.Errorf("invalid user %d", n)
		}
		fn := l.opts.LookupUserID
		if fn == nil {
			fn = defaultLookupUserID
		}
		u, err := fn(n)
		var unknown user.UnknownUserIdError
		switch {
		case errors.As(err, &unknown):
			return nil, n, nil
		case err != nil:
			return nil, 0, fmt.Errorf("user %d: %v", n, err)
		case u.UID != n:
			return nil, 0, fmt.Errorf("user %d: the user database returned uid %d", n, u.UID)
		}
		return u, n, nil
	}
	if v == "" {
		return nil, 0, fmt.Errorf("empty user")
	}
	fn := l.opts.LookupUser
	if fn == nil {
		fn = defaultLookupUser
	}
	u, err := fn(v)
	var unknown user.UnknownUserError
	switch {
	case errors.As(err, &unknown):
		return nil, 0, fmt.Errorf("user %q not found", v)
	case err != nil:
		return nil, 0, fmt.Errorf("user %q: %v", v, err)
	case u.UID < 0 || int64(u.UID) > maxID:
		return nil, 0, fmt.Errorf("user %q: invalid uid %d", v, u.UID)
	}
	return u, u.UID, nil
}

// lookupGroup resolves the gid key: a group name, or a number (which
// needs no group entry).
func (l *loader) lookupGroup(v string) (int, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 || int64(n) > maxID {
			return 0, fmt.Errorf("invalid group %d", n)
		}
		return n, nil
	}
	if v == "" {
		return 0, fmt.Errorf("empty group")
	}
	fn := l.opts.LookupGroup
	if fn == nil {
		fn = defaultLookupGroup
	}
	id, err := fn(v)
	var unknown user.UnknownGroupError
	switch {
	case errors.As(err, &unknown):
		return 0, fmt.Errorf("group %q not found", v)
	case err != nil:
		return 0, fmt.Errorf("group %q: %v", v, err)
	case id < 0 || int64(id) > maxID:
		return 0, fmt.Errorf("group %q: invalid id %d", v, id)
	}
	return id, nil
}

// userEnv are the variables that describe the user a process runs as.
var userEnv = []string{"HOME", "USER", "LOGNAME", "SHELL"}

// resolveCredentials completes w's uid/gid once every key is read: the
// primary group, the supplementary groups, and the user's variables in
// env (except those an env section set). It reports a numeric uid without
// a passwd entry and without gid at the uid key.
func (l *loader) resolveCredentials(s *srcSection, uidKey srcKey, w *Watcher, env map[string]string, fromSection map[string]bool) {
	if w.UID == nil && w.GID == nil {
		return
	}
	switch {
	case w.UID == nil:
		// gid alone: circled's user with just that group, not circled's
		// supplementary groups.
		w.Groups = []int{*w.GID}
	case w.User == nil:
		if w.GID == nil {
			l.errorf(s, uidKey.line, uidKey.name, "uid %d has no passwd entry, so it has no primary group: set gid as well", *w.UID)
			return
		}
		w.Groups = []int{}
	default:
		if w.GID == nil {
			gid := w.User.GID
			w.GID = &gid
		}
		w.Groups = append([]int{*w.GID}, w.User.Groups...)
		slices.Sort(w.Groups)
		w.Groups = slices.Compact(w.Groups)
	}
	if w.UID != nil {
		var vals []string
		if u := w.User; u != nil {
			vals = []string{u.Home, u.Name, u.Name, u.Shell}
		}
		for i, k := range userEnv {
			switch {
			case fromSection[k]:
			case vals != nil:
				env[k] = vals[i]
			default:
				// No passwd entry: nothing to say, and circled's own
				// values (copy_env) would be wrong.
				delete(env, k)
			}
		}
	}
	lookup := l.opts.LookupGroupID
	if lookup == nil {
		lookup = defaultLookupGroupID
	}
	for _, g := range append([]int{*w.GID}, w.Groups...) {
		if _, done := w.GroupNames[g]; done {
			continue
		}
		if name, err := lookup(g); err == nil && name != "" {
			if w.GroupNames == nil {
				w.GroupNames = map[int]string{}
			}
			w.GroupNames[g] = name
		}
	}
}
