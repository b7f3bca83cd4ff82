package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// checkReport is the --json document of circlectl check.
type checkReport struct {
	File     string   `json:"file"`
	Valid    bool     `json:"valid"`
	Watchers []string `json:"watchers"`
	Warnings []string `json:"warnings"`
	Errors   []string `json:"errors"`
}

func newCheckCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Validate a config offline and print the resolved watchers",
		Long: `Validate a config without a daemon: print the resolved watchers and the
warnings and exit 0, or print every error and exit 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.config == "" {
				return usageErrorf("check needs -c FILE")
			}
			cfg, err := config.Load(g.config, config.Options{Environ: os.Environ()})
			errs := splitErrors(err)
			if asJSON {
				r := checkReport{File: g.config, Valid: err == nil, Watchers: []string{}, Warnings: []string{}, Errors: []string{}}
				if cfg != nil {
					r.File = cfg.File
					for _, w := range cfg.Watchers {
						r.Watchers = append(r.Watchers, w.Name)
					}
					for _, w := range cfg.Warnings {
						r.Warnings = append(r.Warnings, w.String())
					}
				}
				for _, e := range errs {
					r.Errors = append(r.Errors, e.Error())
				}
				if perr := printJSON(cmd.OutOrStdout(), r); perr != nil {
					return perr
				}
			} else if cfg != nil {
				if werr := cfg.WriteSummary(cmd.OutOrStdout()); werr != nil {
					return werr
				}
			}
			if err != nil {
				if !asJSON {
					for _, e := range errs {
						fmt.Fprintf(cmd.ErrOrStderr(), "error: %s\n", e)
					}
				}
				return &exitError{exitFailed, fmt.Errorf("%s: invalid config (%d error(s))", g.config, len(errs))}
			}
			return nil
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

// splitErrors undoes errors.Join, so each problem prints on its own line.
func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []error{err}
}
