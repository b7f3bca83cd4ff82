package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets of the config package (issue 13, "Also"). Their seed
// corpora are in testdata/fuzz/<Name>/; run one with, for example,
//
//	go test ./supervisor/config -run '^$' -fuzz '^FuzzLoad$' -fuzztime 60s

// leafErrors flattens errors.Join trees.
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// FuzzLoad writes the input as a main file and loads it: no panic, a
// config or an error (never both), every error a *Error naming the file,
// and a loaded config that can be summarised and equals itself.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(briefConfig))
	f.Add([]byte("[circus]\ninclude = *.ini\n[watcher:a]\ncmd = '$(circle.env.X)\n  more\n[env:*]\nX=$Y${Z}$(circus.wid)\n"))
	f.Add([]byte("[watcher:a]\ncmd=x\nstdout_stream.class=file\nstdout_stream.filename=\"\"\"a\n[socket:x]\n"))
	// supervisord files: the test corpus and a few odd ones.
	sv, _ := filepath.Glob("testdata/supervisord/*/supervisord.conf")
	for _, p := range sv {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("[supervisord]\n[program:a]\ncommand=x %(process_num)02d ; c\nnumprocs=3\nprocess_name=%(program_name)s_%(process_num)d\nenvironment=A=\"%(ENV_Y)s\",B='1'\n[group:g]\nprograms=a,a\n"))
	f.Add([]byte("[program:a]\ncommand=%(here)s/x %%(y\nstdout_logfile=AUTO\n[inet_http_server]\nport=*:0\n[include]\nfiles=*.conf\n"))
	if files, _ := filepath.Glob("../../../shared/peer-configs/circus/*/*.ini"); len(files) > 0 {
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "circled.ini")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, testOptions("PATH=/bin", "Y=y"))
		if err == nil {
			var b strings.Builder
			if err := c.WriteSummary(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.Watchers {
				if !w.Equal(w) {
					t.Fatal("watcher not equal to itself")
				}
				if w.ProcessNames != nil && len(w.ProcessNames) != w.NumProcesses {
					t.Fatalf("watcher %q: %d process names for %d processes", w.Name, len(w.ProcessNames), w.NumProcesses)
				}
				if CheckWatcherName(w.Name) != nil || w.NumProcesses > MaxProcesses {
					t.Fatalf("watcher %q loaded with %d processes", w.Name, w.NumProcesses)
				}
				for _, a := range w.Argv {
					if strings.IndexByte(a, 0) >= 0 {
						t.Fatalf("NUL in argv %q", w.Argv)
					}
				}
			}
		} else {
			if c != nil {
				t.Fatal("config and error")
			}
			for _, e := range leafErrors(err) {
				var ce *Error
				if !errors.As(e, &ce) || ce.File == "" {
					t.Fatalf("error %q is a %T, not a *Error naming a file", e, e)
				}
			}
		}
		_, _ = ReadDaemon(p)
	})
}

// FuzzParse runs the ini parser alone (fast: no files): no panic, a file
// or errors with lines, keys in order with lines, no NUL in what is
// accepted.
func FuzzParse(f *testing.F) {
	f.Add([]byte(briefConfig))
	f.Add([]byte("; c\n[watcher:a]\ncmd = prog\n  --a\n\n\t--b\nargs: x ; y # z\n[env:a]\nK=1\r\nk=2\n"))
	f.Add([]byte("\xef\xbb\xbf[a]\nk=v\n  c\n  ; still c\n[DEFAULT]\n[a\n\"q\"=1\nv=`x`\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, errs := parseSource("f.ini", 1, data)
		if (sf == nil) == (len(errs) == 0) {
			t.Fatalf("file %v with errors %v", sf != nil, errs)
		}
		for _, e := range errs {
			if e.File != "f.ini" || e.Line <= 0 {
				t.Fatalf("error without file or line: %+v", e)
			}
		}
		if sf == nil {
			return
		}
		last := 0
		for _, s := range sf.sections {
			if s.line <= last || s.name == "" {
				t.Fatalf("section %q at line %d after line %d", s.name, s.line, last)
			}
			last = s.line
			for _, k := range s.keys {
				if k.line <= last || k.name == "" {
					t.Fatalf("key %q at line %d after line %d", k.name, k.line, last)
				}
				last = k.line
				if strings.IndexByte(k.name+k.value, 0) >= 0 {
					t.Fatalf("NUL accepted in %q = %q", k.name, k.value)
				}
			}
		}
	})
}

// FuzzExpand runs the substitutions of values and env sections
// ($(circle.env.X), $(circle.wid), $VAR, ${VAR}): no panic; a value
// without '$' is unchanged; without allowWID no WIDToken appears unless
// it was in the input or the environment.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"$(circle.env.X)", "$(CIRCUS.ENV.path)", "$(circled.wid)", "$WID", "${X}$X$Y", "$(circle.sockets.web)",
		"$(circle.foo)", "$(date)", "$", "$(", "${", "$(circle.env.", "a$$b", "$(circle.env.X",
	} {
		f.Add(s, true, true)
		f.Add(s, false, false)
	}
	env := map[string]string{"X": "x", "Path": "/bin", "EMPTY": ""}
	f.Fuzz(func(t *testing.T, v string, allowWID, shellVars bool) {
		ex := &expander{layers: []map[string]string{env}, allowWID: allowWID, shellVars: shellVars, warn: func(string) {}}
		out, err := ex.expand(v)
		if err != nil {
			return
		}
		if !strings.Contains(v, "$") && out != v {
			t.Fatalf("%q changed to %q", v, out)
		}
		if !allowWID && strings.Contains(out, WIDToken) && !strings.Contains(v, WIDToken) {
			t.Fatalf("%q gave %q without allowWID", v, out)
		}
	})
}

// FuzzSplitCommand splits cmd/args values: no panic, and (where
// backslashes escape, i.e. not on Windows) the words circled check prints
// (quoteArgv) split back into the same words.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{
		`prog "a b" 'c d' e\ f`, `sh -c 'echo $HOME; ls'`, "a\\\nb", `"unterminated`, `'x'\''y'`, "a\tb\nc", `"\$\"\\"`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitCommand(s)
		if err != nil || len(words) == 0 || runtime.GOOS == "windows" {
			return
		}
		again, err := splitCommand(quoteArgv(words))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q: words %q, quoted %q, split again %q (%v)", s, words, quoteArgv(words), again, err)
		}
	})
}

// FuzzSupervisordValues runs supervisord's value readers alone: the
// %(name)s expansion and the environment lexer never panic, and a
// tokenised process_num always records its width.
func FuzzSupervisordValues(f *testing.F) {
	f.Add("x %(process_num)02d %(program_name)s %%", `A="1,2",B='x y',C=z`)
	f.Add("%(numprocs)-5d%(ENV_X).2s%(process_num)s", "A=1,,B=2 # c\nC=3")
	f.Fuzz(func(t *testing.T, v, env string) {
		vals := map[string]pyVal{"program_name": pyStr("p"), "numprocs": pyNum(2), "ENV_X": pyStr("xyz")}
		tok := &widUse{}
		out, err := pyExpand(v, vals, tok, "command")
		if err == nil && strings.Contains(out, WIDToken) && !strings.Contains(v, WIDToken) && !tok.used {
			t.Fatalf("%q: token without a recorded use", v)
		}
		kvs, err := parseSVEnvironment(env)
		if err == nil {
			for _, kv := range kvs {
				if kv.k == "" {
					t.Fatalf("%q: empty key", env)
				}
			}
		}
	})
}
