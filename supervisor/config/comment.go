package config

import "strings"

// inlineComment finds what looks like an inline comment in a raw value:
// ";" or "#" after a space, tab or line break, outside single and double
// quotes. circled, like circus (configparser without
// inline_comment_prefixes), keeps it as part of the value, which is
// rarely what was meant (`socket = /run/x.sock   ; default` names a
// socket "/run/x.sock   ; default"). In a command (cmd, args) ";" is
// left alone (a shell separator), and so is "#" when the command runs
// through the shell (it is then a shell comment). It returns the marker
// (" ;" or " #") or "".
func inlineComment(v string, command, shell bool) string {
	var quote byte
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			continue
		case v[i-1] != ' ' && v[i-1] != '\t' && v[i-1] != '\n':
		case c == ';' && !command:
			return " ;"
		case c == '#' && !(command && shell):
			return " #"
		}
		if c == '\'' || c == '"' {
			quote = c
		}
	}
	return ""
}

// warnInlineComment warns about a value with an inline-comment look.
func (l *loader) warnInlineComment(s *srcSection, k srcKey, command, shell bool) {
	m := inlineComment(k.value, command, shell)
	if m == "" {
		return
	}
	v := strings.TrimSpace(k.value)
	if len(v) > 72 {
		v = v[:69] + "..."
	}
	l.warnf(s, k.line, k.name, "%q looks like an inline comment, but there are none (as in circus): the value is %q; put comments on their own line", m, v)
}
