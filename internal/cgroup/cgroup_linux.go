//go:build linux

package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// SelfLeaf is the cgroup, under circled's subtree, that circled moves
// itself into.
const SelfLeaf = "circled"

// Tree is circled's cgroup subtree.
type Tree struct {
	path   string // OWN/NAME
	orig   string // circled's cgroup before it moved itself; "" if it did not
	clone3 bool   // clone3(CLONE_INTO_CGROUP) places children race-free
	seq    atomic.Uint64

	mu   sync.Mutex
	dirs map[string]bool // watcher directories made
}

// Setup makes circled's subtree NAME under the cgroup circled runs in,
// and, with moveSelf, moves circled into its leaf. It fails (and circled
// falls back to process groups) where there is no writable cgroup v2.
func Setup(name string, moveSelf bool) (*Tree, error) {
	mount, own, err := selfPath()
	if err != nil {
		return nil, err
	}
	base := filepath.Join(mount, own, name)
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	t := &Tree{path: base, clone3: canClone3(), dirs: map[string]bool{}}
	if moveSelf {
		leaf := filepath.Join(base, SelfLeaf)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			os.Remove(base)
			return nil, err
		}
		if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
			os.Remove(leaf)
			os.Remove(base)
			return nil, fmt.Errorf("moving circled into %s: %w", leaf, err)
		}
		t.orig = filepath.Join(mount, own)
	} else if err := unix.Access(filepath.Join(base, "cgroup.procs"), unix.W_OK); err != nil {
		os.Remove(base)
		return nil, fmt.Errorf("%s/cgroup.procs: %w", base, err)
	}
	return t, nil
}

// Path is the subtree's directory.
func (t *Tree) Path() string { return t.path }

// Clone3 reports whether children are placed by clone3 (race-free);
// otherwise their pid is written to cgroup.procs right after their start.
func (t *Tree) Clone3() bool { return t.clone3 }

// DirName is the directory of watcher name's cgroups: the name itself,
// unless the kernel or circled's own leaf could take it.
func DirName(name string) string {
	if name == "." || name == ".." || name == SelfLeaf || strings.HasPrefix(name, "cgroup.") || strings.HasPrefix(name, "_") {
		return "_" + name
	}
	return name
}

// NewProc makes the cgroup for one process of watcher (WATCHER/WID.SEQ:
// a new one per process, so a graceful reload's old and new processes
// are told apart).
func (t *Tree) NewProc(watcher string, wid int) (*Proc, error) {
	wdir := filepath.Join(t.path, DirName(watcher))
	t.mu.Lock()
	if !t.dirs[wdir] {
		if err := os.Mkdir(wdir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			t.mu.Unlock()
			return nil, err
		}
		t.dirs[wdir] = true
	}
	t.mu.Unlock()
	for {
		// A name may be taken by a cgroup a previous circled left.
		path := filepath.Join(wdir, strconv.Itoa(wid)+"."+strconv.FormatUint(t.seq.Add(1), 10))
		err := os.Mkdir(path, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			// Someone removed an empty directory of the subtree.
			if err = os.MkdirAll(wdir, 0o755); err == nil {
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		return &Proc{t: t, path: path, fd: -1}, nil
	}
}

// Adopt returns the Proc of a cgroup under t that a previous binary of
// this process made (a live upgrade): path must be under t's subtree.
func (t *Tree) Adopt(path string) (*Proc, error) {
	rel, err := filepath.Rel(t.path, path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("%s is not under %s", path, t.path)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a cgroup directory (%v)", path, err)
	}
	return &Proc{t: t, path: path, fd: -1}, nil
}

// Enter moves circled into the cgroup directory dir (a live upgrade's
// new binary going back to where its subtree was made).
func Enter(dir string) error {
	return writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(os.Getpid()))
}

// Close moves circled back to where it started and removes the empty
// cgroups of its subtree (a populated one stays).
func (t *Tree) Close() {
	if t.orig != "" {
		Enter(t.orig)
	}
	RemoveTree(t.path)
}

// Proc is one process's cgroup.
type Proc struct {
	t      *Tree
	path   string
	fd     int  // directory fd for clone3, until Started
	killed bool // cgroup.kill was written (see Reusable)
}

// Path is the cgroup's directory.
func (p *Proc) Path() string { return p.path }

// Prepare arranges for cmd to start inside the cgroup (clone3 with
// CLONE_INTO_CGROUP, Linux 5.7): it is never outside, not even for an
// instant. Without clone3 it does nothing and Started moves the pid.
func (p *Proc) Prepare(cmd *exec.Cmd) error {
	if !p.t.clone3 {
		return nil
	}
	fd, err := unix.Open(p.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	p.fd = fd
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	return nil
}

// Started is called once cmd.Start returned (with pid 0 if it failed).
// Without clone3 it moves pid into the cgroup now: cmd.Start returns
// once the child has exec'd, so a child that forks at once may leave one
// process in circled's own cgroup (still in its process group).
func (p *Proc) Started(pid int) error {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
		return nil
	}
	if pid <= 0 {
		return nil
	}
	return writeFile(filepath.Join(p.path, "cgroup.procs"), strconv.Itoa(pid))
}

// Pids lists every process in the cgroup and in the cgroups below it.
func (p *Proc) Pids() []int { return treePids(p.path) }

// Populated reports whether any process is left in the cgroup (or
// below). An unreadable cgroup.events counts as populated.
func (p *Proc) Populated() bool { return PopulatedPath(p.path) }

// Signal sends sig to every process in the cgroup that is not in
// process group skip (which the caller signals with one kill(-pgid)): no
// process gets it twice. skip 0 signals them all.
func (p *Proc) Signal(sig syscall.Signal, skip int) {
	for _, pid := range p.Pids() {
		if skip > 0 {
			if g, err := unix.Getpgid(pid); err == nil && g == skip {
				continue
			}
		}
		unix.Kill(pid, sig)
	}
}

// Kill sends SIGKILL to every process in the cgroup, atomically with
// cgroup.kill (Linux 5.14), or pid by pid before that.
func (p *Proc) Kill() {
	p.killed = true
	KillTree(p.path)
}

// Reusable reports whether an emptied cgroup may host another process.
// Not once cgroup.kill was written to it: some kernels (seen on 6.18)
// then SIGKILL every process later cloned into it with
// CLONE_INTO_CGROUP (the fork compares the cgroup's kill sequence with
// the parent's cgroup's).
func (p *Proc) Reusable() bool { return !p.killed }

// Watch calls f (from another goroutine, with no lock held) whenever
// the cgroup's cgroup.events changes, until cancel. The caller re-checks
// Populated after Watch returns, so no change is missed.
func (p *Proc) Watch(f func()) (cancel func()) { return WatchPath(p.path, f) }

// Remove deletes the cgroup (it must be empty).
func (p *Proc) Remove() error {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
	return RemoveTree(p.path)
}

// PopulatedPath reads cgroup.events of the cgroup at path.
//
// It is read on every exit of a contained process, before the slot can
// restart: one open, one read and one close. cgroupfs produces the whole
// file (a few lines) in the first read, so the end-of-file read that a
// general reader makes is skipped once the populated line is complete.
func PopulatedPath(path string) bool {
	file := filepath.Join(path, "cgroup.events")
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err != unix.ENOENT
	}
	var buf [128]byte
	n, err := unix.Read(fd, buf[:])
	for err == unix.EINTR {
		n, err = unix.Read(fd, buf[:])
	}
	unix.Close(fd)
	if err != nil || n < 0 {
		return true
	}
	if v, ok := populatedLine(buf[:n]); ok {
		return v
	}
	// Not in the first read (not expected): read it all.
	b, err := readFile(file)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	if v, ok := populatedLine(b); ok {
		return v
	}
	return true
}

// populatedLine finds a complete "populated N" line in b.
func populatedLine(b []byte) (populated, ok bool) {
	for len(b) > 0 {
		line, rest, found := bytes.Cut(b, []byte{'\n'})
		if !found {
			return false, false // cut short
		}
		if v, ok := bytes.CutPrefix(line, []byte("populated ")); ok {
			return string(v) != "0", true
		}
		b = rest
	}
	return false, false
}

// KillTree sends SIGKILL to every process in the cgroup at path and
// below it.
func KillTree(path string) {
	if writeFile(filepath.Join(path, "cgroup.kill"), "1") == nil {
		return
	}
	// No cgroup.kill (before Linux 5.14): a process may fork between the
	// listing and the kill; a few rounds catch its children.
	for range 5 {
		pids := treePids(path)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// RemoveTree removes the cgroup at path and every cgroup below it,
// deepest first; a populated cgroup stays (EBUSY).
//
// A process's cgroup has no child cgroups as a rule: one rmdir removes
// it, without listing its interface files. Only when that fails is the
// tree walked.
func RemoveTree(path string) error {
	err := unix.Rmdir(path)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if !hasChildren(path) {
		return &fs.PathError{Op: "rmdir", Path: path, Err: err}
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			errs = append(errs, RemoveTree(filepath.Join(path, e.Name())))
		}
	}
	if err := unix.Rmdir(path); err != nil && err != unix.ENOENT {
		errs = append(errs, &fs.PathError{Op: "rmdir", Path: path, Err: err})
	}
	return errors.Join(errs...)
}

// hasChildren reports whether the cgroup at path may have child
// cgroups. cgroupfs (kernfs) gives a directory a link count of 2 plus
// its subdirectories, so one stat answers without listing the dozens
// of interface files; any doubt (an error, another link count) is yes.
func hasChildren(path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err != unix.ENOENT
	}
	return st.Nlink != 2
}

// Leftovers lists, per cgroup under base (base included), the processes
// in it, skipping pid skip (circled itself). Empty cgroups are left out.
func Leftovers(base string, skip int) map[string][]int {
	out := map[string][]int{}
	filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		var pids []int
		for _, pid := range readPids(filepath.Join(path, "cgroup.procs")) {
			if pid != skip {
				pids = append(pids, pid)
			}
		}
		if len(pids) > 0 {
			out[path] = pids
		}
		return nil
	})
	return out
}

// PidsPath lists every process in the cgroup at path and below it.
func PidsPath(path string) []int { return treePids(path) }

func treePids(path string) []int {
	pids := readPids(filepath.Join(path, "cgroup.procs"))
	if !hasChildren(path) {
		return pids
	}
	ents, _ := os.ReadDir(path)
	for _, e := range ents {
		if e.IsDir() {
			pids = append(pids, treePids(filepath.Join(path, e.Name()))...)
		}
	}
	return pids
}

func readPids(file string) []int {
	b, err := readFile(file)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// readFile reads a small cgroup interface file: like os.ReadFile, with
// fewer system calls and allocations (no stat, no poller), as stopping
// 2000 processes reads two of these per process.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 512)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// selfPath finds the cgroup2 mount point and circled's cgroup in it.
func selfPath() (mount, own string, err error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			own, found = p, true
			break
		}
	}
	if !found {
		return "", "", fmt.Errorf("%w: no \"0::\" line in /proc/self/cgroup", ErrUnsupported)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 || qf[0] != "cgroup2" {
			continue
		}
		root, mp := unescape(pf[3]), unescape(pf[4])
		rel := own
		if root != "/" {
			r, ok := strings.CutPrefix(own, root)
			if !ok || (r != "" && r[0] != '/') {
				continue
			}
			rel = r
		}
		if rel == "" {
			rel = "/"
		}
		return mp, rel, nil
	}
	return "", "", fmt.Errorf("%w: no cgroup2 mount in /proc/self/mountinfo", ErrUnsupported)
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// canClone3 reports whether clone3 with CLONE_INTO_CGROUP (Linux 5.7)
// can be used: the kernel is recent enough, and clone3 itself is not
// refused (a container's seccomp profile may answer ENOSYS). clone3 with
// no arguments fails with EINVAL where it exists.
func canClone3() bool {
	if !kernelAtLeast(5, 7) {
		return false
	}
	_, _, errno := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	return errno == unix.EINVAL
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return ma > major || (ma == major && mi >= minor)
}

// The inotify instance that watches cgroup.events files: one per
// process, read by one goroutine through the runtime's poller.
var notifier struct {
	once sync.Once
	err  error
	fd   int
	f    *os.File
	mu   sync.Mutex
	fns  map[int]*watchFn
}

type watchFn struct{ f func() }

// WatchPath calls f whenever cgroup.events of the cgroup at path
// changes (and once more when the cgroup is removed), until cancel.
// If inotify is not available, f is called once, at once.
func WatchPath(path string, f func()) (cancel func()) {
	n := &notifier
	n.once.Do(func() {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			n.err = err
			return
		}
		n.fd, n.f, n.fns = fd, os.NewFile(uintptr(fd), "inotify"), map[int]*watchFn{}
		go readEvents()
	})
	if n.err != nil {
		go f()
		return func() {}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	wd, err := unix.InotifyAddWatch(n.fd, filepath.Join(path, "cgroup.events"), unix.IN_MODIFY)
	if err != nil {
		go f()
		return func() {}
	}
	w := &watchFn{f: f}
	n.fns[wd] = w
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.fns[wd] == w {
			delete(n.fns, wd)
			unix.InotifyRmWatch(n.fd, uint32(wd))
		}
	}
}

func readEvents() {
	n := &notifier
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		k, err := n.f.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
				continue
			}
			return
		}
		var fns []func()
		n.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= k; {
			ev := (*unix.InotifyEvent)(unsafePointer(&buf[off]))
			wd := int(ev.Wd)
			if w := n.fns[wd]; w != nil {
				fns = append(fns, w.f)
				if ev.Mask&unix.IN_IGNORED != 0 {
					delete(n.fns, wd)
				}
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		n.mu.Unlock()
		for _, f := range fns {
			f()
		}
	}
}
