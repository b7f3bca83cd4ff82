package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// parseBool accepts true/false/yes/no/on/off/1/0 in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q (want true/false, yes/no, on/off or 1/0)", s)
}

// parseDuration accepts float seconds ("25.5", circus's form) or a Go
// duration ("10s", "1m30s"). Negative durations are errors.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f*float64(time.Second) > float64(math.MaxInt64) || f*float64(time.Second) < float64(math.MinInt64) {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if f < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want seconds such as 2.5, or a duration such as 10s)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// parseOctal parses a permission mask: "0600", "600" or "0o600", at most 0777.
func parseOctal(s string) (int, error) {
	t := strings.TrimSpace(s)
	u := strings.TrimPrefix(strings.TrimPrefix(t, "0o"), "0O")
	n, err := strconv.ParseUint(u, 8, 32)
	if err != nil || u == "" {
		return 0, fmt.Errorf("invalid octal mode %q", s)
	}
	if n > 0o777 {
		return 0, fmt.Errorf("mode %q is larger than 0777", s)
	}
	return int(n), nil
}

// parseSize parses a byte count: a plain integer, or a number with a K, M,
// G or T suffix (optionally followed by B or iB). Every multiple is binary
// (1KB = 1KiB = 1024), as log rotation sizes conventionally are.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	num := t
	for _, suf := range []struct {
		s string
		m int64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
		{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
	} {
		if strings.HasSuffix(t, suf.s) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(t, suf.s)), suf.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q (want bytes, or a number with KB, MB, GB or TB)", s)
	}
	return n * mult, nil
}

// parseRlimit parses an rlimit value: a non-negative integer, or
// unlimited / infinity / -1.
func parseRlimit(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "unlimited", "infinity", "-1":
		return RlimInfinity, nil
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid limit %q (want a non-negative integer or unlimited)", s)
	}
	return n, nil
}

// absPath makes p absolute against dir.
func absPath(dir, p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// envMap turns an environ list into a map; later duplicates win. A leading
// "=" is part of the name (Windows' "=C:" entries).
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if i := strings.IndexByte(kv[min(1, len(kv)):], '='); i >= 0 {
			i += min(1, len(kv))
			m[kv[:i]] = kv[i+1:]
		}
	}
	return m
}

// envList is the sorted "K=V" form of an environment map.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// lookupEnvFold finds name in the layers (first layer wins): an exact key
// first, then a case-insensitive match (several: the smallest key).
func lookupEnvFold(name string, layers ...map[string]string) (string, bool) {
	for _, l := range layers {
		if v, ok := l[name]; ok {
			return v, true
		}
	}
	for _, l := range layers {
		best, found := "", false
		for k := range l {
			if strings.EqualFold(k, name) && (!found || k < best) {
				best, found = k, true
			}
		}
		if found {
			return l[best], true
		}
	}
	return "", false
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// characters (the commonest typo) each cost 1.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// suggest returns the candidate closest to s within edit distance 2, or "".
func suggest(s string, candidates []string) string {
	s = strings.ToLower(s)
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, strings.ToLower(c)); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	return best
}

func unknownMsg(what, name string, candidates []string) string {
	msg := "unknown " + what
	if s := suggest(name, candidates); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return msg
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// parseExitCodes parses a comma- (or space-) separated list of exit codes
// 0..255, as supervisord's exitcodes.
func parseExitCodes(s string) ([]int, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty list of exit codes")
	}
	out := make([]int, 0, len(fields))
	for _, f := range fields {
		n, err := parseIntRange(f, 0, 255)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseProcessNames parses process_names: space-separated display names,
// each a valid watcher name without ':' (supervisord's rule).
func parseProcessNames(s string) ([]string, error) {
	names := strings.Fields(s)
	if len(names) == 0 {
		return nil, fmt.Errorf("empty list of process names")
	}
	if len(names) > MaxProcesses {
		return nil, fmt.Errorf("%d process names (at most %d)", len(names), MaxProcesses)
	}
	for _, n := range names {
		if err := checkProcessName(n); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// checkProcessName checks a supervisord process or group name: a valid
// watcher name without ':' (supervisord refuses ' ', ':' and '/').
func checkProcessName(n string) error {
	if err := CheckWatcherName(n); err != nil {
		return fmt.Errorf("process name: %v", err)
	}
	if strings.Contains(n, ":") {
		return fmt.Errorf("process name %q: ':' is not allowed", n)
	}
	return nil
}

// parseInetAddr parses a TCP listen address the way supervisord's
// [inet_http_server] port does: "host:port", ":port", "*:port" or "port"
// (every interface). It returns host:port with an empty host for every
// interface.
func parseInetAddr(s string) (string, error) {
	t := strings.TrimSpace(s)
	host, port := "", t
	if i := strings.LastIndexByte(t, ':'); i >= 0 {
		host, port = strings.ToLower(t[:i]), t[i+1:]
	}
	if host == "*" {
		host = ""
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid port in %q (want [host:]port, port 1..65535)", s)
	}
	if strings.ContainsAny(host, " \t/[]") {
		return "", fmt.Errorf("invalid host in %q", s)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// isLoopbackAddr reports whether host:port listens on loopback only.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseRespawn parses the respawn key: always, on-failure or never; a
// boolean (true is always, false never); supervisord's unexpected is
// on-failure.
func parseRespawn(s string) (string, error) {
	switch t := strings.ToLower(strings.TrimSpace(s)); t {
	case "always", "on-failure", "never":
		return t, nil
	case "on_failure", "unexpected":
		return "on-failure", nil
	}
	on, err := parseBool(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("invalid respawn %q (want always, on-failure or never; true or false)", s)
	case on:
		return "always", nil
	}
	return "never", nil
}

// Dependency conditions (Dependency.Condition).
const (
	DependStarted   = "started"
	DependReady     = "ready"
	DependCompleted = "completed"
)

// parseDependsOn parses depends_on: comma- (or space-) separated
// NAME[:CONDITION], CONDITION started, ready (the default) or completed.
// A watcher name may itself contain ':' (supervisord's group:program):
// only a last ':' followed by a condition splits.
func parseDependsOn(s string) ([]Dependency, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty list of watchers")
	}
	out := make([]Dependency, 0, len(fields))
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		d := Dependency{Name: f, Condition: DependReady}
		if i := strings.LastIndexByte(f, ':'); i >= 0 {
			switch c := strings.ToLower(f[i+1:]); c {
			case DependStarted, DependReady, DependCompleted:
				d = Dependency{Name: f[:i], Condition: c}
			}
		}
		if err := CheckWatcherName(d.Name); err != nil {
			return nil, err
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("%s is listed twice", d.Name)
		}
		seen[d.Name] = true
		out = append(out, d)
	}
	return out, nil
}

// parseCheckAddr checks a ready.tcp / health.tcp address: HOST:PORT
// (HOST may be empty: the local host), PORT 1..65535 once
// $(circle.wid) is 1.
func parseCheckAddr(s string) (string, error) {
	_, port, err := net.SplitHostPort(strings.ReplaceAll(s, WIDToken, "1"))
	if err != nil {
		return "", fmt.Errorf("invalid address %q (want HOST:PORT)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid port in %q (want 1..65535)", s)
	}
	return s, nil
}

// parseCheckURL checks a ready.http / health.http URL: http or https,
// with a host.
func parseCheckURL(s string) (string, error) {
	u, err := url.Parse(strings.ReplaceAll(s, WIDToken, "1"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid URL %q (want http://HOST[:PORT]/PATH or https://...)", s)
	}
	return s, nil
}

// parseCheckCommand checks a ready.exec / health.exec command line: it
// splits into words like cmd, at least one.
func parseCheckCommand(s string) (string, error) {
	argv, err := splitCommand(s)
	if err != nil {
		return "", err
	}
	if len(argv) == 0 || argv[0] == "" {
		return "", fmt.Errorf("empty command")
	}
	return s, nil
}

// parseRegexp checks a ready.log pattern (Go's regexp syntax, RE2).
func parseRegexp(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty regular expression")
	}
	if _, err := regexp.Compile(s); err != nil {
		return "", fmt.Errorf("invalid regular expression %q: %v", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return s, nil
}
