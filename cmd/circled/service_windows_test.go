package main

// Unit tests of the Windows service glue; they run under Wine. The whole
// install -> start -> status -> stop -> uninstall cycle with circled's own
// binary is in packaging/windows/test-wine.sh (a service needs an
// installed executable, not a test binary). Recovery actions are checked
// on real Windows only: service_realwindows_test.go.

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"

	"github.com/circle-supervisor/circle/internal/testhelper"
)

func TestWindowsServiceArgs(t *testing.T) {
	// Not t.TempDir: under Wine 8 its RemoveAll check fails ("Invalid function").
	dir := testhelper.ShortDir(t)
	cfg := filepath.Join(dir, "circled.ini")
	got, err := serviceArgs(cfg, map[string]string{"socket": "mine", "log-level": "debug", "pidfile": "c.pid"})
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := []string{"-c", cfg, "--log-level=debug", "--pidfile=" + filepath.Join(wd, "c.pid"), "--socket=mine", "--service"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("serviceArgs = %q\nwant %q", got, want)
	}
	line := commandLine(`C:\Program Files\circled\circled.exe`, []string{"-c", `C:\a b\c.ini`, "--service"})
	if line != `"C:\Program Files\circled\circled.exe" -c "C:\a b\c.ini" --service` {
		t.Fatalf("commandLine = %s", line)
	}
}

func TestWindowsDefaults(t *testing.T) {
	if got := defaultConfigPath(); !strings.HasSuffix(got, `\circled\circled.ini`) || !filepath.IsAbs(got) {
		t.Errorf("defaultConfigPath = %q", got)
	}
	if got := defaultLogsDir(); !strings.HasSuffix(got, `\circled\logs`) {
		t.Errorf("defaultLogsDir = %q", got)
	}
	if got := startErrorFile("svc"); filepath.Dir(got) != defaultLogsDir() {
		t.Errorf("startErrorFile = %q", got)
	}
}

func TestWindowsExitCodeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&exitError{code: 7}, 7},
		{errors.New("x"), 1},
	} {
		if got := exitCodeOf(tc.err); got != tc.want {
			t.Errorf("exitCodeOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestWindowsStartFailure(t *testing.T) {
	f := filepath.Join(testhelper.ShortDir(t), "err.txt")
	st := svc.Status{State: svc.Stopped, Win32ExitCode: uint32(windows.ERROR_SERVICE_SPECIFIC_ERROR), ServiceSpecificExitCode: 3}
	if got := startFailure(f, st); !strings.Contains(got, "exit code 3") {
		t.Errorf("no file: %q", got)
	}
	os.WriteFile(f, []byte("invalid config:\nx.ini:1: bad\n"), 0o644)
	if got := startFailure(f, st); got != "invalid config:\nx.ini:1: bad" {
		t.Errorf("with file: %q", got)
	}
}

func TestWindowsServiceOptions(t *testing.T) {
	s, err := newService("circled-test", []string{"-c", `C:\x.ini`, "--service"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.String() == "" {
		t.Fatal("empty service")
	}
}

func TestWindowsRequestStop(t *testing.T) {
	ch := notifySignals()
	defer func() { stopCh.Lock(); stopCh.ch = nil; stopCh.Unlock() }()
	if !requestStop() || !requestStop() {
		t.Fatal("requestStop = false with a subscriber")
	}
	if got := <-ch; got != os.Interrupt {
		t.Fatalf("got %v", got)
	}
}

func TestWindowsServiceFlagOutsideSCM(t *testing.T) {
	// --service by hand: svc.Run cannot connect to the SCM. It must fail
	// with a clear error, not hang.
	cfg := filepath.Join(testhelper.ShortDir(t), "circled.ini")
	os.WriteFile(cfg, []byte("[circled]\n"), 0o644)
	var out strings.Builder
	root := newRootCmd()
	root.SetArgs([]string{"-c", cfg, "--service", "--service-name", "circled-unit-test"})
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "not started by the service control manager") {
		t.Fatalf("err = %v", err)
	}
}
