package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest watcher name, in bytes.
const MaxNameLen = 128

// NameChars describes the characters a watcher name may contain, for
// messages and documentation.
const NameChars = "letters, digits and _ . - : @"

// isNameRune reports whether r may appear in a watcher name: a Unicode
// letter or decimal digit, or one of _ . - : @. Spaces, control
// characters (C0, C1), format characters (bidi overrides, zero-width
// joiners), slashes, glob characters and invalid UTF-8 (decoded as
// U+FFFD) are all outside the set.
func isNameRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.-:@", r)
}

// CheckWatcherName reports whether name can name a watcher: 1 to
// MaxNameLen bytes of valid UTF-8 made of NameChars, not starting with
// "-" (it would read as a flag on circlectl's command line), and neither
// "." nor "..". Such a name can be typed on a command line, addressed in
// an API path and matched by a glob.
func CheckWatcherName(name string) error {
	switch {
	case name == "":
		return errors.New("empty watcher name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("watcher name %.20q... is %d bytes long (at most %d)", name, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("watcher name %q is not valid UTF-8 (allowed: %s)", name, NameChars)
	case name == "." || name == "..":
		return fmt.Errorf("watcher name %q is not allowed", name)
	case name[0] == '-':
		return fmt.Errorf("watcher name %q may not start with -", name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return !isNameRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return fmt.Errorf("watcher name %q: %q is not allowed (allowed: %s)", name, r, NameChars)
	}
	return nil
}

// checkEnvPatterns checks the patterns of an [env:PATTERNS] section: each
// comma-separated pattern may hold NameChars and the glob characters
// * ? [ ] ^ \ (anything else could never match a watcher name).
func checkEnvPatterns(pats string) error {
	if !utf8.ValidString(pats) {
		return fmt.Errorf("watcher pattern %q is not valid UTF-8", pats)
	}
	for _, p := range strings.Split(pats, ",") {
		p = strings.TrimSpace(p)
		if i := strings.IndexFunc(p, func(r rune) bool { return !isNameRune(r) && !strings.ContainsRune(`*?[]^\`, r) }); i >= 0 {
			r, _ := utf8.DecodeRuneInString(p[i:])
			return fmt.Errorf("watcher pattern %q: %q is not allowed (allowed: %s, and the glob characters * ? [ ] ^ \\)", p, r, NameChars)
		}
	}
	return nil
}

// quoteNUL makes a key name that contains NUL printable.
func quoteNUL(s string) string { return strings.ReplaceAll(s, "\x00", `\x00`) }

const nulMsg = "NUL character (\\x00) is not allowed"
