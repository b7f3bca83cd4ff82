// Package logs captures watchers' output: it splits each process's
// stream into whole lines, writes them to the stream's destination
// (circled's stdout/stderr with a "NAME.WID | " prefix, a rotated file,
// or nowhere), keeps the last output of every watcher in a fixed-size
// in-memory ring for `circlectl logs`, and counts what a failing
// destination dropped. Nothing here blocks a child on a slow reader of
// the ring, and the hot path does per-chunk, not per-line, work.
package logs
