// Package rpc2 serves supervisord's XML-RPC API (POST /RPC2, API version
// 3.0) over a Backend, so that supervisorctl and the tools written against
// supervisord can drive circled.
//
// rpc2 never imports the supervisor (it is a leaf, like ctl): cmd/circled
// adapts the supervisor to Backend.
//
// Names. A circle watcher is a supervisor process group. Its processes are
// named after the watcher when it has one process (numprocesses = 1, as
// supervisor's default process_name = %(program_name)s), else NAME_WID
// (web_1, web_2, ...; wids count from 1), unless the backend names them
// (Process.Name). A process is addressed as "group:name", or as "name"
// when name equals its group; "group:*" and "group:" address the group.
//
// The XML-RPC codec is strict and bounded: bodies up to MaxBody bytes,
// values nested at most MaxDepth deep, no DTD (so no entity expansion), and
// only the XML-RPC types int, i4, i8, boolean, string, double,
// dateTime.iso8601, base64, struct, array and nil. No method runs a
// command: the backend only starts, stops and signals configured watchers.
package rpc2
