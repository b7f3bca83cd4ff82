package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// pyVal is a value of supervisord's %(name)s expansions: a string, or a
// number (process_num, numprocs).
type pyVal struct {
	s     string
	n     int
	isNum bool
}

func pyStr(s string) pyVal { return pyVal{s: s} }
func pyNum(n int) pyVal    { return pyVal{n: n, isNum: true} }

// widUse records how %(process_num) was formatted in the values of one
// program that become $(circle.wid): the watcher pads every occurrence
// alike (Watcher.WIDWidth).
type widUse struct {
	used  bool
	width int
	key   string // the first key that used it
}

// pyExpand performs supervisor's expand(): Python's "%" formatting of s
// with a mapping. "%%" is "%"; "%(name)FLAGSWIDTH.PRECISIONconv" with conv
// s, r, a, d, i or u is the value formatted. When tok is not nil,
// process_num is not in vals but becomes WIDToken (its format recorded in
// tok; only %d and %0Nd can be padded per process). key names the key
// for tok's messages.
func pyExpand(s string, vals map[string]pyVal, tok *widUse, key string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			b.WriteByte('%')
			i += 2
			continue
		}
		if i+1 >= len(s) || s[i+1] != '(' {
			return "", fmt.Errorf("badly formatted: %q at offset %d is neither %%%% nor %%(name)s (write a literal %% as %%%%)", "%", i)
		}
		end := strings.IndexByte(s[i+2:], ')')
		if end < 0 {
			return "", fmt.Errorf("badly formatted: unclosed %%( at offset %d", i)
		}
		name := s[i+2 : i+2+end]
		j := i + 2 + end + 1
		flagStart := j
		for j < len(s) && strings.IndexByte("#0- +", s[j]) >= 0 {
			j++
		}
		flags := s[flagStart:j]
		wStart := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		width, prec := s[wStart:j], ""
		if j < len(s) && s[j] == '.' {
			p0 := j
			j++
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			prec = s[p0:j]
		}
		for j < len(s) && strings.IndexByte("hlL", s[j]) >= 0 {
			j++
		}
		if j >= len(s) {
			return "", fmt.Errorf("badly formatted: %%(%s) has no conversion (want %%(%s)s or %%(%s)d)", name, name, name)
		}
		conv := s[j]
		j++
		if len(width) > 6 || len(prec) > 7 {
			return "", fmt.Errorf("format width of %%(%s) is too large", name)
		}
		if tok != nil && name == "process_num" {
			w, err := tokenWidth(flags, width, prec, conv)
			if err != nil {
				return "", err
			}
			if tok.used && tok.width != w {
				return "", fmt.Errorf("%%(process_num) is padded to %d digits here but to %d in %s: circled pads every $(circle.wid) of a program alike", w, tok.width, tok.key)
			}
			if !tok.used {
				tok.used, tok.width, tok.key = true, w, key
			}
			b.WriteString(WIDToken)
			i = j
			continue
		}
		v, ok := vals[name]
		if !ok {
			var names []string
			for n := range vals {
				if !strings.HasPrefix(n, "ENV_") {
					names = append(names, n)
				}
			}
			if tok != nil {
				names = append(names, "process_num")
			}
			slices.Sort(names)
			return "", fmt.Errorf("%%(%s) cannot be expanded (available: %s and ENV_ followed by a variable of circled's environment)", name, strings.Join(names, ", "))
		}
		out, err := pyFormat(v, flags, width, prec, conv, name)
		if err != nil {
			return "", err
		}
		b.WriteString(out)
		i = j
	}
	return b.String(), nil
}

// tokenWidth is the zero padding of a process_num that becomes WIDToken.
func tokenWidth(flags, width, prec string, conv byte) (int, error) {
	if strings.IndexByte("sdiu", conv) < 0 || prec != "" || strings.Trim(flags, "0") != "" {
		return 0, fmt.Errorf("%%(process_num) with numprocs > 1: only %%(process_num)d and %%(process_num)0Nd are supported")
	}
	w, _ := strconv.Atoi(width)
	if w > 1 && (flags == "" || conv == 's') {
		return 0, fmt.Errorf("%%(process_num)%s%s%c pads with spaces: with numprocs > 1 only %%(process_num)d and %%(process_num)0Nd are supported", flags, width, conv)
	}
	if w > MaxWIDWidth {
		return 0, fmt.Errorf("%%(process_num) padded to %d digits (at most %d)", w, MaxWIDWidth)
	}
	if w == 1 {
		w = 0
	}
	return w, nil
}

// pyFormat formats one value as Python's % operator does for the
// conversions supervisord configs use.
func pyFormat(v pyVal, flags, width, prec string, conv byte, name string) (string, error) {
	var body string
	switch conv {
	case 's', 'r', 'a':
		body = v.s
		if v.isNum {
			body = strconv.Itoa(v.n)
		} else if conv != 's' {
			body = "'" + strings.ReplaceAll(strings.ReplaceAll(v.s, `\`, `\\`), "'", `\'`) + "'"
		}
		if prec != "" {
			if p, _ := strconv.Atoi(prec[1:]); p < len(body) {
				body = body[:p]
			}
		}
		flags = strings.ReplaceAll(flags, "0", "") // no zero padding of strings
	case 'd', 'i', 'u':
		if !v.isNum {
			return "", fmt.Errorf("%%(%s)%c: a number is required, not the string %q", name, conv, v.s)
		}
		n := v.n
		neg := n < 0
		if neg {
			n = -n
		}
		body = strconv.Itoa(n)
		if prec != "" {
			if p, _ := strconv.Atoi(prec[1:]); p > len(body) {
				body = strings.Repeat("0", p-len(body)) + body
			}
		}
		sign := ""
		switch {
		case neg:
			sign = "-"
		case strings.Contains(flags, "+"):
			sign = "+"
		case strings.Contains(flags, " "):
			sign = " "
		}
		w, _ := strconv.Atoi(width)
		if strings.Contains(flags, "0") && !strings.Contains(flags, "-") && prec == "" && len(sign)+len(body) < w {
			body = strings.Repeat("0", w-len(sign)-len(body)) + body
		}
		body = sign + body
	default:
		return "", fmt.Errorf("%%(%s)%c: conversion %q is not supported by circled (use s or d)", name, conv, conv)
	}
	w, _ := strconv.Atoi(width)
	if len(body) < w {
		pad := strings.Repeat(" ", w-len(body))
		if strings.Contains(flags, "-") {
			return body + pad, nil
		}
		return pad + body, nil
	}
	return body, nil
}

// envKV is one variable of an environment, in the order written.
type envKV struct{ k, v string }

// svWordChars are the word characters of supervisord's environment lexer
// (Python's non-POSIX shlex, with /.+-(): added).
const svWordChars = "abcdfeghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/.+-():"

// parseSVEnvironment parses supervisord's environment value
// KEY="val",KEY2=val2 as its dict_of_key_value_pairs does: Python's
// non-POSIX shlex splits words (letters, digits and _/.+-():), quoted
// strings (kept with their quotes) and single other characters; # starts
// a comment up to the end of the line; every 4 tokens are KEY = VALUE and
// a separator; the value loses its surrounding quotes.
func parseSVEnvironment(s string) ([]envKV, error) {
	var toks []string
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("no closing quotation in %q", s)
			}
			toks = append(toks, s[i:i+end+2])
			i += end + 2
		case strings.IndexByte(svWordChars, c) >= 0:
			j := i
			for j < len(s) {
				d := s[j]
				if strings.IndexByte(svWordChars, d) >= 0 || d == '"' || d == '\'' {
					j++
					continue
				}
				if d == '#' { // shlex skips the rest of the line and goes on with the word
					for j < len(s) && s[j] != '\n' {
						j++
					}
					if j < len(s) {
						j++
					}
					continue
				}
				break
			}
			toks = append(toks, stripComments(s[i:j]))
			i = j
		default:
			toks = append(toks, s[i:i+1])
			i++
		}
	}
	var out []envKV
	for k := 0; k < len(toks); k += 4 {
		if k+3 > len(toks) || toks[k+1] != "=" {
			return nil, fmt.Errorf("unexpected end of key/value pairs in %q (want KEY=value,KEY2=\"value with spaces\")", s)
		}
		out = append(out, envKV{toks[k], strings.Trim(toks[k+2], `'"`)})
	}
	return out, nil
}

// stripComments drops the "#..." line remainders a shlex word skipped.
func stripComments(w string) string {
	if !strings.Contains(w, "#") {
		return w
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] == '#' {
			for i < len(w) && w[i] != '\n' {
				i++
			}
			continue
		}
		b.WriteByte(w[i])
	}
	return b.String()
}

// stripInlineComment removes what Python 3's configparser (supervisor 4,
// inline_comment_prefixes ; and #) takes for an inline comment: from the
// first ; or # that follows whitespace. first says the line is a value's
// first line (its leading whitespace was trimmed, so a prefix at offset 0
// is not a comment there).
func stripInlineComment(line string, first bool) string {
	for i := 0; i < len(line); i++ {
		if line[i] != ';' && line[i] != '#' {
			continue
		}
		if (i == 0 && !first) || (i > 0 && (line[i-1] == ' ' || line[i-1] == '\t')) {
			return line[:i]
		}
	}
	return line
}

// svValue is a value as supervisord reads it: inline comments removed
// from each line, each line trimmed.
func svValue(raw string) string {
	lines := strings.Split(raw, "\n")
	for i, ln := range lines {
		lines[i] = strings.TrimSpace(stripInlineComment(ln, i == 0))
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
