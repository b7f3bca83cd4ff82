package main

import (
	"fmt"
	"os"

	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/spf13/cobra"
)

// check validates a config: exit 0 and the resolved watchers when valid,
// exit 1 and every error otherwise.
func check(cmd *cobra.Command, file string) error {
	cfg, err := config.Load(file, config.Options{Environ: os.Environ()})
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintln(cmd.ErrOrStderr(), e)
		}
		return &exitError{code: 1}
	}
	if err := cfg.WriteSummary(cmd.OutOrStdout()); err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}

// unjoin splits an errors.Join into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
