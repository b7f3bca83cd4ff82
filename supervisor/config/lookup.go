package config

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

func defaultLookupUser(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Uid)
}

func defaultLookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

// lookupID resolves a uid or gid given as a number or a name.
func (l *loader) lookupID(kind, v string) (int, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("invalid %s %d", kind, n)
		}
		return n, nil
	}
	if v == "" {
		return 0, fmt.Errorf("empty %s", kind)
	}
	fn := l.opts.LookupUser
	if kind == "group" {
		fn = l.opts.LookupGroup
	}
	if fn == nil {
		fn = defaultLookupUser
		if kind == "group" {
			fn = defaultLookupGroup
		}
	}
	id, err := fn(v)
	var uu user.UnknownUserError
	var ug user.UnknownGroupError
	switch {
	case errors.As(err, &uu) || errors.As(err, &ug):
		return 0, fmt.Errorf("%s %q not found", kind, v)
	case err != nil:
		return 0, fmt.Errorf("%s %q: %v", kind, v, err)
	case id < 0:
		return 0, fmt.Errorf("%s %q: invalid id %d", kind, v, id)
	}
	return id, nil
}
