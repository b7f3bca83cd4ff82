package main

import "golang.org/x/sys/unix"

// markRangeCloexec sets close-on-exec on every fd above 2 but keep with
// close_range(2) (Linux 5.11+); false when the kernel lacks it.
func markRangeCloexec(keep int) bool {
	const all = ^uint(0)
	if keep < 0 {
		return unix.CloseRange(3, all, unix.CLOSE_RANGE_CLOEXEC) == nil
	}
	if keep > 3 && unix.CloseRange(3, uint(keep-1), unix.CLOSE_RANGE_CLOEXEC) != nil {
		return false
	}
	return unix.CloseRange(uint(keep+1), all, unix.CLOSE_RANGE_CLOEXEC) == nil
}
