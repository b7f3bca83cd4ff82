package main

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// programDataDir is %ProgramData%\circled, circled's machine-wide home on
// Windows. The known folder comes first: a service's environment and an
// admin's prompt must agree on it (under Wine they differ).
func programDataDir() string {
	d, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil || d == "" {
		d = os.Getenv("ProgramData")
	}
	if d == "" {
		d = `C:\ProgramData`
	}
	return filepath.Join(d, "circled")
}

// defaultConfigPath is %ProgramData%\circled\circled.ini.
func defaultConfigPath() string { return filepath.Join(programDataDir(), "circled.ini") }

// defaultLogsDir is %ProgramData%\circled\logs: the service's own log
// (when [circled] logfile is unset) and its start error go there.
func defaultLogsDir() string { return filepath.Join(programDataDir(), "logs") }

// startErrorFile is where the service writes why it failed to start, for
// the --daemon launcher to print.
func startErrorFile(name string) string {
	return filepath.Join(defaultLogsDir(), name+".start-error.txt")
}
