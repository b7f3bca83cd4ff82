// Package safefile opens, renames and removes the files circled writes
// (log files, the pidfile) so that whoever else can write to their
// directory cannot steer root's circled to another file.
//
// On Unix a Dir is a directory descriptor. OpenDir resolves the path once,
// one component at a time, relative to the previous directory's
// descriptor and without following a symbolic link found in a directory
// that someone other than root (or circled's own user) can write. Every
// later operation is relative to that descriptor:
//   - the final component is never followed (O_NOFOLLOW; O_EXCL on create);
//   - only regular files are opened, checked with fstatat before the open
//     (so a FIFO or a device is never opened) and with fstat after it;
//   - in a directory others can write, a file with more than one hard link
//     is refused (it may be a link to a file elsewhere);
//   - opens never block (O_NONBLOCK, then cleared) and never acquire a
//     controlling terminal (O_NOCTTY);
//   - truncation (os.O_TRUNC) happens only after those checks;
//   - rename and remove act on directory entries (renameat, unlinkat),
//     which never follow symbolic links.
//
// On Windows a Dir is a path: opens refuse a symbolic link or a
// non-regular file found by Lstat just before, which is racy but Windows
// offers no O_NOFOLLOW equivalent through package os; circled on Windows
// runs its log directories under its own account.
package safefile
