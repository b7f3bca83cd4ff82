package watcher

import "golang.org/x/sys/unix"

func rlimitResource(name string) (int, bool) {
	if r, ok := rlimitResources[name]; ok {
		return r, true
	}
	r, ok := map[string]int{
		"locks":      unix.RLIMIT_LOCKS,
		"memlock":    unix.RLIMIT_MEMLOCK,
		"msgqueue":   unix.RLIMIT_MSGQUEUE,
		"nice":       unix.RLIMIT_NICE,
		"nproc":      unix.RLIMIT_NPROC,
		"rss":        unix.RLIMIT_RSS,
		"rtprio":     unix.RLIMIT_RTPRIO,
		"rttime":     unix.RLIMIT_RTTIME,
		"sigpending": unix.RLIMIT_SIGPENDING,
	}[name]
	return r, ok
}
