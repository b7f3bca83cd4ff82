package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// daemonize on Windows will install and start the circled service (the
// Windows issue); until then it says so.
func daemonize(cmd *cobra.Command, f rootFlags) error {
	return &exitError{code: 1, err: errors.New("--daemon is not supported on windows yet: run circled in the foreground")}
}
