// Package config turns circled's ini files into a typed, validated Config.
// It owns the file format: the [circled] (alias [circus]) daemon section,
// include and include_dir (and the default conf.d), [watcher:NAME],
// [env] and [env:PATTERNS] sections, the $(circle.env.X) / $(circle.wid)
// substitutions, defaults, and every error and warning message a config
// can produce, each naming file, line and key. It is compatible with
// circus's configuration files: circus features circled does not implement
// load with a warning.
//
// The package is pure: it reads files and, for uid and gid, the user and
// group databases (through Options, replaceable in tests), and never
// starts, signals or watches anything. A uid is resolved completely here:
// its primary group, its supplementary groups (initgroups) and its home,
// name and shell for the environment, so nothing is looked up at spawn. Load is the entry point for circled;
// ReadDaemon reads only the main file's daemon section, for circlectl.
//
// Values are read the way Python's configparser reads them: ';' and '#'
// start a comment only at the beginning of a line, indented lines continue
// the previous value, '%' is literal. circled's own keys and section
// prefixes match case-insensitively; env keys keep their case.
package config
