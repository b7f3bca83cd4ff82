//go:build linux

package packaging

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The version the test stamps into its binaries, as the Makefile's -ldflags do.
const (
	testVersion = "v0.0.0-packaging-test"
	testCommit  = "pkgtest"
)

var (
	// tmpRoot is removed after every test ran.
	tmpRoot string

	buildOnce sync.Once
	crossDir  string // crossDir/linux-GOARCH/{circled,circlectl}
	buildErr  error
)

func TestMain(m *testing.M) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "circled-packaging"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// repoRoot is the module root: tests run in packaging/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// goCmd is the go command of the toolchain running the test.
func goCmd() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// needLinuxPackaging skips unless the machine can build and read a .deb
// of its own architecture.
func needLinuxPackaging(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("SKIP: packages are built for linux only; this is %s", runtime.GOOS)
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("SKIP: packages are built for linux/amd64 and linux/arm64; this machine is %s", runtime.GOARCH)
	}
	for _, tool := range []string{"bash", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (apt-get install dpkg)", tool)
		}
	}
}

// binaries builds stamped, static circled and circlectl for this machine
// once, into the layout of bin/cross.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir := filepath.Join(tmpRoot, "cross")
		out := filepath.Join(dir, "linux-"+runtime.GOARCH)
		const pkg = "github.com/circle-supervisor/circle/internal/buildinfo"
		ldflags := "-s -w -X " + pkg + ".Version=" + testVersion + " -X " + pkg + ".Commit=" + testCommit
		for _, p := range []string{"circled", "circlectl"} {
			cmd := exec.Command(goCmd(), "build", "-trimpath", "-ldflags", ldflags,
				"-o", filepath.Join(out, p), "./cmd/"+p)
			cmd.Dir = repoRoot(t)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErr = errors.New("go build " + p + ": " + err.Error() + "\n" + string(b))
				return
			}
		}
		crossDir = dir
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return crossDir
}

// run runs a command and returns its combined output; a failure is fatal.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

var (
	debOnce sync.Once
	debPath string
	debErr  error
)

// buildDeb runs packages.sh for this machine's architecture (deb and rpm)
// on the test's binaries, once, and returns the .deb.
func buildDeb(t *testing.T) string {
	t.Helper()
	needLinuxPackaging(t)
	bins := binaries(t)
	debOnce.Do(func() {
		dist := filepath.Join(tmpRoot, "dist")
		cmd := exec.Command("bash", "packaging/packages.sh")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CROSS_DIR="+bins, "DIST_DIR="+dist,
			"ARCHS="+runtime.GOARCH, "FORMATS=deb rpm", "GO="+goCmd())
		start := time.Now()
		b, err := cmd.CombinedOutput()
		if err != nil {
			debErr = errors.New("packages.sh: " + err.Error() + "\n" + string(b))
			return
		}
		t.Logf("packages.sh (%s): %s", time.Since(start).Round(time.Millisecond), b)
		debs, _ := filepath.Glob(filepath.Join(dist, "circled_*_"+runtime.GOARCH+".deb"))
		rpms, _ := filepath.Glob(filepath.Join(dist, "circled-*.rpm"))
		if len(debs) != 1 || len(rpms) != 1 {
			debErr = errors.New("packages.sh: want one .deb and one .rpm in " + dist + ", got " +
				strings.Join(append(debs, rpms...), " "))
			return
		}
		sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
		if err != nil || !strings.Contains(string(sums), filepath.Base(debs[0])) ||
			!strings.Contains(string(sums), filepath.Base(rpms[0])) {
			debErr = errors.New("packages.sh: SHA256SUMS does not list both packages: " + string(sums))
			return
		}
		debPath = debs[0]
	})
	if debErr != nil {
		t.Fatal(debErr)
	}
	return debPath
}

// TestDebContents: the .deb holds the binaries, the config as conffiles,
// the systemd unit and the log directory.
func TestDebContents(t *testing.T) {
	deb := buildDeb(t)

	// dpkg-deb -c lines: "drwxr-xr-x root/root 0 2026-01-02 03:04 ./etc/circled/"
	entries := map[string]string{} // path -> mode string
	for _, line := range strings.Split(strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: unexpected line %q", line)
		}
		entries[strings.TrimPrefix(f[5], ".")] = f[0]
	}
	for path, mode := range map[string]string{
		"/usr/bin/circled":                        "-rwxr-xr-x",
		"/usr/bin/circlectl":                      "-rwxr-xr-x",
		"/etc/circled/circled.ini":                "-rw-r--r--",
		"/etc/circled/conf.d/":                    "drwxr-xr-x",
		"/usr/lib/systemd/system/circled.service": "-rw-r--r--",
		"/var/log/circled/":                       "drwxr-x---",
		"/usr/share/doc/circled/copyright":        "-rw-r--r--",
	} {
		got, ok := entries[path]
		if !ok {
			t.Errorf("the .deb lacks %s", path)
		} else if got != mode {
			t.Errorf("%s: mode %s, want %s", path, got, mode)
		}
	}

	// Every file under /etc/circled is a conffile: edits survive upgrades.
	conffiles := strings.Fields(run(t, "", nil, "dpkg-deb", "-I", deb, "conffiles"))
	for path, mode := range entries {
		if strings.HasPrefix(path, "/etc/") && !strings.HasSuffix(path, "/") && !slices.Contains(conffiles, path) {
			t.Errorf("%s (%s) is not a conffile; conffiles: %v", path, mode, conffiles)
		}
	}
	for _, want := range []string{"/etc/circled/circled.ini", "/etc/circled/conf.d/README"} {
		if !slices.Contains(conffiles, want) {
			t.Errorf("conffiles %v lack %s", conffiles, want)
		}
	}

	ctrl := run(t, "", nil, "dpkg-deb", "-f", deb, "Package", "Architecture", "Version")
	// The package's version is the one packaging/version.sh gives the
	// Makefile, which stamps it into the binaries, with nfpm's Debian
	// revision -1.
	version := strings.TrimSpace(run(t, repoRoot(t), nil, "sh", "packaging/version.sh"))
	for _, want := range []string{"Package: circled", "Architecture: " + runtime.GOARCH, "Version: " + version + "-1\n"} {
		if !strings.Contains(ctrl, want) {
			t.Errorf("control fields lack %q:\n%s", want, ctrl)
		}
	}

	// The extracted tree: the binaries run and carry the stamped version;
	// the unit is the one this directory ships.
	tree := filepath.Join(t.TempDir(), "root")
	run(t, "", nil, "dpkg-deb", "-x", deb, tree)
	out := run(t, "", nil, filepath.Join(tree, "usr/bin/circled"), "--version")
	checkVersion(t, "circled", out)
	unit, err := os.ReadFile(filepath.Join(tree, "usr/lib/systemd/system/circled.service"))
	if err != nil {
		t.Fatal(err)
	}
	checkUnit(t, string(unit))
}

// checkVersion: "PROG VERSION (commit COMMIT, goX.Y.Z)".
func checkVersion(t *testing.T, prog, out string) {
	t.Helper()
	want := prog + " " + testVersion + " (commit " + testCommit + ", " + runtime.Version() + ")"
	if !strings.Contains(out, want) {
		t.Errorf("%s version printed %q, want %q", prog, out, want)
	}
}

// checkUnit checks the keys the service's behaviour depends on.
func checkUnit(t *testing.T, unit string) {
	t.Helper()
	keys := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	for k, want := range map[string]string{
		"Type":       "notify",
		"ExecStart":  "/usr/bin/circled -c /etc/circled/circled.ini",
		"ExecReload": "/usr/bin/circlectl -c /etc/circled/circled.ini reloadconfig",
		"KillMode":   "mixed",
		"Restart":    "on-failure",
		"WantedBy":   "multi-user.target",
	} {
		if keys[k] != want {
			t.Errorf("circled.service: %s=%q, want %q", k, keys[k], want)
		}
	}
	// Above the default graceful_timeout (30 s), with room for more than
	// one priority level.
	if s, err := strconv.Atoi(keys["TimeoutStopSec"]); err != nil || s < 60 {
		t.Errorf("circled.service: TimeoutStopSec=%q, want seconds >= 60", keys["TimeoutStopSec"])
	}
}

// dpkgRun runs dpkg with args and returns its output; while another dpkg
// or apt holds dpkg's lock it tries again, for up to 10 minutes, instead
// of failing: go test ./... runs packages at once, and a test of another
// package may be installing what it needs (packaging/test-deps-*.sh run
// apt-get) when this one installs the .deb.
func dpkgRun(t *testing.T, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for waited := false; ; waited = true {
		b, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil {
			return string(b)
		}
		if !strings.Contains(string(b), "locked by another process") || time.Now().After(deadline) {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		if !waited {
			t.Logf("dpkg %s: dpkg's lock is held; trying again until it is free: %s", strings.Join(args, " "), strings.TrimSpace(string(b)))
		}
		time.Sleep(time.Second) // a poll of another process's lock, with the deadline above
	}
}

// TestDebInstall installs the .deb on this machine, runs the installed
// programs, and purges it again. It needs root and dpkg; it leaves alone a
// machine where a circled package is already installed.
func TestDebInstall(t *testing.T) {
	needLinuxPackaging(t)
	if os.Geteuid() != 0 {
		t.Skip("SKIP: installing the .deb needs root (dpkg -i); the package contents are still checked by TestDebContents")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("SKIP: dpkg is not installed: not a Debian-like machine")
	}
	deb := buildDeb(t)

	// One install at a time on this machine (concurrent `make test` runs).
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "circled-packaging-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	// Known to dpkg in any state but "not-installed" (installed, or removed
	// with its config kept): someone's circled, not ours to replace or purge.
	if st, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "circled").Output(); err == nil &&
		!strings.Contains(string(st), "not-installed") {
		t.Skipf("SKIP: dpkg knows a circled package here (%s); the test does not replace or purge it", st)
	}

	dpkgRun(t, "-i", deb)
	purged := false
	purge := func() {
		if !purged {
			purged = true
			dpkgRun(t, "--purge", "circled")
		}
	}
	t.Cleanup(purge)

	checkVersion(t, "circled", run(t, "", nil, "/usr/bin/circled", "--version"))
	// circlectl version prints its own line, then exits 4: no daemon runs.
	ctlOut, _ := exec.Command("/usr/bin/circlectl", "--socket", filepath.Join(t.TempDir(), "none.sock"), "version").CombinedOutput()
	checkVersion(t, "circlectl", string(ctlOut))

	out := run(t, "", nil, "/usr/bin/circled", "check", "-c", "/etc/circled/circled.ini")
	if !strings.Contains(out, "0 watcher(s)") {
		t.Errorf("circled check -c /etc/circled/circled.ini: %s", out)
	}
	if fi, err := os.Stat("/var/log/circled"); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Errorf("/var/log/circled after install: %v, %v", fi, err)
	}
	if path, err := exec.LookPath("systemd-analyze"); err == nil {
		run(t, "", nil, path, "verify", "/usr/lib/systemd/system/circled.service")
	}

	purge()
	for _, p := range []string{"/usr/bin/circled", "/usr/bin/circlectl", "/etc/circled/circled.ini",
		"/usr/lib/systemd/system/circled.service", "/var/log/circled"} {
		if fileExists(p) {
			t.Errorf("%s is left after dpkg --purge circled", p)
		}
	}
}

// TestDist: dist.sh archives every platform directory (tar.gz, zip for
// windows) with both binaries, README, LICENSE, CHANGELOG and conf.d, and
// lists them in SHA256SUMS.
func TestDist(t *testing.T) {
	needLinuxPackaging(t)
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("SKIP: sha256sum is not installed")
	}
	bins := binaries(t)
	// A cross directory with this machine's binaries and stand-ins for a
	// Windows build (dist.sh only copies them).
	cross := t.TempDir()
	linux := "linux-" + runtime.GOARCH
	for _, c := range []struct{ dir, src, dst string }{
		{linux, "circled", "circled"}, {linux, "circlectl", "circlectl"},
		{"windows-amd64", "circled", "circled.exe"}, {"windows-amd64", "circlectl", "circlectl.exe"},
	} {
		b, err := os.ReadFile(filepath.Join(bins, linux, c.src))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(cross, c.dir), 0o755)
		if err := os.WriteFile(filepath.Join(cross, c.dir, c.dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dist := t.TempDir()
	run(t, repoRoot(t), []string{"CROSS_DIR=" + cross, "DIST_DIR=" + dist, "VERSION=1.2.3"}, "bash", "packaging/dist.sh")

	want := []string{"README.md", "LICENSE", "CHANGELOG.md", "conf.d/circled.ini", "conf.d/example.ini"}
	tgz := "circled-1.2.3-" + linux + ".tar.gz"
	names := tarNames(t, filepath.Join(dist, tgz))
	for _, n := range append(want, "circled", "circlectl") {
		if !slices.Contains(names, "circled-1.2.3-"+linux+"/"+n) {
			t.Errorf("%s lacks %s; has %v", tgz, n, names)
		}
	}
	zipName := "circled-1.2.3-windows-amd64.zip"
	if _, err := exec.LookPath("unzip"); err == nil {
		list := run(t, "", nil, "unzip", "-l", filepath.Join(dist, zipName))
		for _, n := range append(want, "circled.exe", "circlectl.exe") {
			if !strings.Contains(list, "circled-1.2.3-windows-amd64/"+n) {
				t.Errorf("%s lacks %s:\n%s", zipName, n, list)
			}
		}
	}
	run(t, dist, nil, "sha256sum", "--check", "--strict", "SHA256SUMS")
	sums, _ := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	for _, n := range []string{tgz, zipName} {
		if !strings.Contains(string(sums), "  "+n+"\n") {
			t.Errorf("SHA256SUMS lacks %s:\n%s", n, sums)
		}
	}
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: %s owned by %d:%d, want root", path, h.Name, h.Uid, h.Gid)
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
	}
}

// TestVersionScript: a snapshot's version names the VERSION file's
// release, sorts before it, and sorts by commit date then count (dpkg's
// order; rpm's tilde rule is the same), never by hash.
func TestVersionScript(t *testing.T) {
	root := repoRoot(t)
	v := strings.TrimSpace(run(t, root, nil, "sh", "packaging/version.sh"))
	base, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	b := strings.TrimSpace(string(base))
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(b) + `(~git[0-9]{8}\.[0-9]+\.g[0-9a-f]+(\.dirty)?)?$`)
	if !re.MatchString(v) {
		t.Fatalf("version.sh printed %q, want %s", v, re)
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not installed: cannot check the sort order")
	}
	lt := func(a, b string) bool { return exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil }
	for _, c := range [][2]string{
		{b + "~git20261123.40.gffffff0", b + "~git20261124.41.g0000001"},
		{b + "~git20261124.41.gfff", b + "~git20261124.42.g000"},
		{b + "~git20261124.41.g000", b},
		{b + "~git20261124.41.g000", b + "~git20261124.41.g000.dirty"},
	} {
		if !lt(c[0], c[1]) {
			t.Errorf("dpkg: %s does not sort before %s", c[0], c[1])
		}
	}
}

// postinst is packaging/nfpm/postinstall.sh with its absolute paths moved
// under root (/usr/bin, /etc/circled) and no systemd (/run/systemd/system
// absent), written to root/postinst.
func postinst(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "nfpm", "postinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, p := range []string{"/usr/bin/circlectl", "/usr/bin/circled", "/etc/circled/circled.ini", "/run/systemd/system"} {
		if !strings.Contains(s, p) {
			t.Fatalf("postinstall.sh no longer names %s: update the test", p)
		}
	}
	s = strings.NewReplacer("/usr/bin/", root+"/usr/bin/", "/etc/circled/", root+"/etc/circled/",
		"/run/systemd/system", root+"/no-systemd").Replace(s)
	path := filepath.Join(root, "postinst")
	if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// posixShells are the POSIX shells to run the maintainer scripts with:
// dash (Debian's /bin/sh) and bash --posix, when installed.
func posixShells(t *testing.T) [][]string {
	t.Helper()
	var shells [][]string
	if _, err := exec.LookPath("dash"); err == nil {
		shells = append(shells, []string{"dash"})
	}
	if _, err := exec.LookPath("bash"); err == nil {
		shells = append(shells, []string{"bash", "--posix"})
	}
	if len(shells) == 0 {
		shells = append(shells, []string{"sh"})
	}
	return shells
}

// TestMaintainerScriptsSyntax: every maintainer script parses as POSIX sh.
func TestMaintainerScriptsSyntax(t *testing.T) {
	scripts, _ := filepath.Glob(filepath.Join(repoRoot(t), "packaging", "nfpm", "*.sh"))
	if len(scripts) < 3 {
		t.Fatalf("packaging/nfpm has %d scripts, want postinstall, preremove, postremove", len(scripts))
	}
	for _, sh := range posixShells(t) {
		for _, s := range scripts {
			if out, err := exec.Command(sh[0], append(sh[1:], "-n", s)...).CombinedOutput(); err != nil {
				t.Errorf("%s -n %s: %v\n%s", strings.Join(sh, " "), filepath.Base(s), err, out)
			}
		}
	}
}

// TestPostinstUpgradeCalls runs postinstall.sh against a stand-in
// circlectl that records its calls: on a package upgrade (deb configure
// OLD-VERSION or abort-upgrade, rpm 2) and only then, a circled that
// answers is upgraded in place with `circlectl -c /etc/circled/circled.ini
// upgrade --binary /usr/bin/circled`; whatever circlectl answers, the
// script exits 0 (a package install never fails on it), and says why
// when the upgrade failed.
func TestPostinstUpgradeCalls(t *testing.T) {
	const (
		up    = "-c ROOT/etc/circled/circled.ini upgrade --binary ROOT/usr/bin/circled --timeout 60s"
		vers  = "-c ROOT/etc/circled/circled.ini version"
		noEnv = "CIRCLED_HOST= CIRCLED_SOCKET="
	)
	cases := []struct {
		name        string
		args        []string
		versionRC   int // the stand-in's exit code for version (4: no daemon)
		upgradeRC   int
		calls       []string
		stdout      string // substring; "" = empty stdout
		stderr      string // substring; "" = empty stderr
		noConfig    bool
		environment []string
	}{
		{name: "deb fresh install", args: []string{"configure", ""}},
		{name: "deb fresh install, no second argument", args: []string{"configure"}},
		{name: "rpm fresh install", args: []string{"1"}},
		{name: "deb upgrade, no circled running", args: []string{"configure", "0.1.0-1"}, versionRC: 4, calls: []string{vers}},
		{name: "deb upgrade", args: []string{"configure", "0.1.0-1"}, calls: []string{vers, up},
			stdout: "circled: circled upgraded from OLD to NEW"},
		{name: "rpm upgrade", args: []string{"2"}, calls: []string{vers, up}, stdout: "circled: circled upgraded"},
		{name: "deb abort-upgrade", args: []string{"abort-upgrade", "0.2.0-1"}, calls: []string{vers, up}, stdout: "circled: circled upgraded"},
		{name: "upgrade refused", args: []string{"configure", "0.1.0-1"}, upgradeRC: 1, calls: []string{vers, up},
			stderr: "live upgrade failed (circlectl upgrade exit 1), the running circled keeps its old version; restart it when convenient (systemctl restart circled): circlectl: upgrade refused: exec format error"},
		{name: "old daemon without upgrade", args: []string{"2"}, upgradeRC: 4, calls: []string{vers, up}, stderr: "live upgrade failed (circlectl upgrade exit 4)"},
		{name: "circlectl cannot tell", args: []string{"configure", "0.1.0-1"}, versionRC: 1, calls: []string{vers},
			stderr: "could not tell whether circled runs"},
		{name: "no config file", args: []string{"configure", "0.1.0-1"}, noConfig: true,
			calls: []string{"version", "upgrade --binary ROOT/usr/bin/circled --timeout 60s"}, stdout: "circled: circled upgraded"},
		{name: "the installing user's environment is not followed", args: []string{"configure", "0.1.0-1"},
			environment: []string{"CIRCLED_HOST=ssh://elsewhere", "CIRCLED_SOCKET=/tmp/other.sock"},
			calls:       []string{vers, up}, stdout: "circled: circled upgraded"},
	}
	for _, sh := range posixShells(t) {
		for _, c := range cases {
			t.Run(sh[0]+"/"+c.name, func(t *testing.T) {
				root := t.TempDir()
				for _, d := range []string{"usr/bin", "etc/circled"} {
					os.MkdirAll(filepath.Join(root, d), 0o755)
				}
				if !c.noConfig {
					os.WriteFile(filepath.Join(root, "etc/circled/circled.ini"), []byte("[circled]\n"), 0o644)
				}
				os.WriteFile(filepath.Join(root, "usr/bin/circled"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
				// The stand-in: records "ARGS | CIRCLED_HOST=.. CIRCLED_SOCKET=..".
				fake := `#!/bin/sh
echo "$* | CIRCLED_HOST=${CIRCLED_HOST:-} CIRCLED_SOCKET=${CIRCLED_SOCKET:-}" >> ` + root + `/calls
for a in "$@"; do
	case "$a" in
	version) exit ` + strconv.Itoa(c.versionRC) + ` ;;
	upgrade)
		if [ ` + strconv.Itoa(c.upgradeRC) + ` = 0 ]; then echo "circled upgraded from OLD to NEW (pid 1, /usr/bin/circled)"; exit 0; fi
		echo "circlectl: upgrade refused: exec format error" >&2; exit ` + strconv.Itoa(c.upgradeRC) + ` ;;
	esac
done
exit 9
`
				os.WriteFile(filepath.Join(root, "usr/bin/circlectl"), []byte(fake), 0o755)
				script := postinst(t, root)
				cmd := exec.Command(sh[0], append(append(sh[1:], script), c.args...)...)
				cmd.Env = append(os.Environ(), c.environment...)
				var stdout, stderr strings.Builder
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Errorf("postinst %v: %v (must exit 0 whatever circlectl does)\nstdout: %s\nstderr: %s", c.args, err, stdout.String(), stderr.String())
				}
				var calls []string
				if b, err := os.ReadFile(filepath.Join(root, "calls")); err == nil {
					for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
						args, env, _ := strings.Cut(l, " | ")
						if env != noEnv {
							t.Errorf("circlectl %s ran with %s, want %s", args, env, noEnv)
						}
						calls = append(calls, strings.ReplaceAll(args, root, "ROOT"))
					}
				}
				if !slices.Equal(calls, c.calls) {
					t.Errorf("postinst %v called circlectl %q, want %q", c.args, calls, c.calls)
				}
				for _, o := range []struct{ name, got, want string }{{"stdout", stdout.String(), c.stdout}, {"stderr", stderr.String(), c.stderr}} {
					if (o.want == "" && o.got != "") || !strings.Contains(o.got, o.want) {
						t.Errorf("postinst %v: %s %q, want %q", c.args, o.name, o.got, o.want)
					}
				}
			})
		}
	}
}

// TestPostinstLiveUpgrade runs postinstall.sh for real: a circled started
// from ROOT/usr/bin/circled, whose file a package upgrade replaces (a new
// file renamed over it), is upgraded in place by the script: same pid,
// same child, the new version. A replacement that cannot take over (a
// file that is no circled) leaves it running; the script still exits 0
// and says why.
func TestPostinstLiveUpgrade(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SKIP: the maintainer scripts are for linux packages")
	}
	bins := filepath.Join(binaries(t), "linux-"+runtime.GOARCH)
	// The new version: the same build stamped otherwise.
	const newVersion = "v0.0.1-packaging-upgrade"
	newBin := filepath.Join(t.TempDir(), "circled-new")
	const pkg = "github.com/circle-supervisor/circle/internal/buildinfo"
	cmd := exec.Command(goCmd(), "build", "-trimpath", "-ldflags", "-s -w -X "+pkg+".Version="+newVersion+" -X "+pkg+".Commit="+testCommit,
		"-o", newBin, "./cmd/circled")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	// A short root: the socket lives under it.
	root, err := os.MkdirTemp("", "pi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	for _, d := range []string{"usr/bin", "etc/circled"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	cp := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+".dpkg-new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".dpkg-new", to); err != nil {
			t.Fatal(err)
		}
	}
	circled, circlectl := filepath.Join(root, "usr/bin/circled"), filepath.Join(root, "usr/bin/circlectl")
	cp(filepath.Join(bins, "circled"), circled)
	cp(filepath.Join(bins, "circlectl"), circlectl)
	conf := filepath.Join(root, "etc/circled/circled.ini")
	sock := filepath.Join(root, "c.sock")
	os.WriteFile(conf, []byte("[circled]\nsocket = "+sock+"\nwatch_config = false\n\n[watcher:sleeper]\ncmd = sleep 1000\n"), 0o644)
	script := postinst(t, root)

	daemon := exec.Command(circled, "-c", conf)
	var dlog strings.Builder
	daemon.Stdout, daemon.Stderr = &dlog, &dlog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { daemon.Wait(); close(done) }()
	t.Cleanup(func() {
		exec.Command(circlectl, "--socket", sock, "quit").Run()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			daemon.Process.Kill()
			<-done
		}
	})
	ctl := func(args ...string) (string, error) {
		b, err := exec.Command(circlectl, append([]string{"--socket", sock}, args...)...).CombinedOutput()
		return string(b), err
	}
	// version --json: the daemon's version and pid.
	type versions struct {
		Daemon *struct {
			Version string `json:"version"`
			PID     int    `json:"pid"`
		} `json:"daemon"`
	}
	daemonVersion := func() (string, int) {
		out, err := ctl("version", "--json")
		if err != nil {
			return "", 0
		}
		var v versions
		if json.Unmarshal([]byte(out), &v) != nil || v.Daemon == nil {
			return "", 0
		}
		return v.Daemon.Version, v.Daemon.PID
	}
	sleeperPid := func() string {
		out, _ := ctl("status", "--json")
		var st struct {
			Watchers []struct {
				Processes []struct {
					PID   int    `json:"pid"`
					State string `json:"state"`
				} `json:"processes"`
			} `json:"watchers"`
		}
		if json.Unmarshal([]byte(out), &st) != nil || len(st.Watchers) != 1 || len(st.Watchers[0].Processes) != 1 {
			return ""
		}
		p := st.Watchers[0].Processes[0]
		return strconv.Itoa(p.PID) + " " + p.State
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasSuffix(sleeperPid(), " running") {
		if time.Now().After(deadline) {
			t.Fatalf("circled never ran its sleeper; log:\n%s", dlog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	v0, pid0 := daemonVersion()
	kid0 := sleeperPid()
	if v0 != testVersion {
		t.Fatalf("circled says version %q, want %q", v0, testVersion)
	}
	postinst := func(args ...string) (string, string) {
		t.Helper()
		c := exec.Command("sh", append([]string{script}, args...)...)
		var o, e strings.Builder
		c.Stdout, c.Stderr = &o, &e
		if err := c.Run(); err != nil {
			t.Errorf("postinst %v: %v (must exit 0)\nstdout: %s\nstderr: %s", args, err, o.String(), e.String())
		}
		return o.String(), e.String()
	}

	// A replacement that is no circled: refused, nothing changes.
	cp(filepath.Join(repoRoot(t), "packaging", "version.sh"), circled)
	out, errs := postinst("configure", "0.0.0-old")
	if strings.Contains(errs, `unknown command "upgrade"`) {
		t.Skipf("SKIP: not implemented: circlectl upgrade (issue 19) is not on this commit: %s", errs)
	}
	if !strings.Contains(errs, "circled: live upgrade failed (circlectl upgrade exit 1)") || !strings.Contains(errs, "__upgrade-check") {
		t.Errorf("postinst with a broken new binary: stdout %q stderr %q, want the failure and its reason on stderr", out, errs)
	}
	if v, pid := daemonVersion(); v != testVersion || pid != pid0 {
		t.Errorf("after a refused upgrade circled says version %q pid %d, want %q pid %d", v, pid, testVersion, pid0)
	}

	// The real new binary: upgraded in place.
	cp(newBin, circled)
	out, errs = postinst("configure", "0.0.0-old")
	if !strings.Contains(out, "circled: circled upgraded from "+testVersion+" to "+newVersion) || errs != "" {
		t.Errorf("postinst: stdout %q stderr %q, want \"circled: circled upgraded from %s to %s ...\"", out, errs, testVersion, newVersion)
	}
	if v, pid := daemonVersion(); v != newVersion || pid != pid0 {
		t.Errorf("after postinst circled says version %q pid %d, want %q pid %d; log:\n%s", v, pid, newVersion, pid0, dlog.String())
	}
	if kid := sleeperPid(); kid != kid0 {
		t.Errorf("the sleeper is %q after the upgrade, was %q", kid, kid0)
	}
}
