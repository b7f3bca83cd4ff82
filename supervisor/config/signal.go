package config

import (
	"fmt"
	"strconv"
	"strings"
)

// signalNames maps the standard Linux numbering (1..31) to the portable
// names circled knows. Numbers are interpreted the Linux way on every OS so
// that a config means the same thing everywhere; 16 (STKFLT) and 30 (PWR)
// have no portable name and stay numbers.
var signalNames = [32]string{
	1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS",
	8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE",
	14: "ALRM", 15: "TERM", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP",
	21: "TTIN", 22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM",
	27: "PROF", 28: "WINCH", 29: "IO", 31: "SYS",
}

// signalAliases are the other spellings accepted for portable names.
var signalAliases = map[string]string{
	"IOT":   "ABRT",
	"POLL":  "IO",
	"CLD":   "CHLD",
	"BREAK": "BREAK", // Windows CTRL_BREAK_EVENT
}

var signalByName = func() map[string]string {
	m := make(map[string]string, len(signalNames)+len(signalAliases))
	for _, n := range signalNames {
		if n != "" {
			m[n] = n
		}
	}
	for a, n := range signalAliases {
		m[a] = n
	}
	return m
}()

// ParseSignal returns the canonical name of a signal given as "TERM",
// "SIGTERM", "sigterm" or "15": the upper-case name without the SIG prefix.
// Numbers 1..31 map to names by the Linux numbering (except 16 and 30,
// which have no portable name); 32..64 (real-time signals) are kept as the
// number's text. BREAK is accepted for Windows' CTRL_BREAK_EVENT.
func ParseSignal(s string) (string, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return "", fmt.Errorf("empty signal")
	}
	if n, err := strconv.Atoi(t); err == nil {
		switch {
		case n >= 1 && n < len(signalNames) && signalNames[n] != "":
			return signalNames[n], nil
		case n >= 1 && n <= 64:
			return strconv.Itoa(n), nil
		}
		return "", fmt.Errorf("invalid signal number %q (want 1..64)", s)
	}
	u := strings.ToUpper(t)
	if name, ok := signalByName[u]; ok {
		return name, nil
	}
	if name, ok := signalByName[strings.TrimPrefix(u, "SIG")]; ok && strings.HasPrefix(u, "SIG") {
		return name, nil
	}
	return "", fmt.Errorf("unknown signal %q", s)
}
