package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/circle-supervisor/circle/internal/safefile"
	"github.com/circle-supervisor/circle/supervisor/config"
	"github.com/spf13/cobra"
)

// newConvertCmd is `circled convert supervisord.conf -o DIR`: it writes
// the same setup in circled's own format (DIR/circled.ini, which includes
// DIR/conf.d, and one conf.d file per program or group), with a
// "# changed:" comment wherever the meaning differs from supervisord's.
func newConvertCmd() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "convert SUPERVISORD.CONF -o DIR",
		Short: "write a supervisord configuration in circled's own format",
		Long: "convert reads a supervisord configuration (and the files its [include] names) the way\n" +
			"circled -c does, and writes DIR/circled.ini and DIR/conf.d/NAME.ini (one per program or\n" +
			"group). Loading DIR/circled.ini gives the same watchers. Comments starting with\n" +
			"\"# changed:\" say where circled's meaning differs; \"# warning:\" lists what it ignores.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: 2, err: errors.New("convert takes one supervisord configuration file")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &exitError{code: 2, err: errors.New("missing -o DIR (the output directory)")}
			}
			return convert(cmd, args[0], out, force)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output directory (created if missing)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite files that already exist in the output directory")
	return cmd
}

func convert(cmd *cobra.Command, src, out string, force bool) error {
	if ok, err := config.IsSupervisord(src); err != nil {
		return &exitError{code: 1, err: err}
	} else if !ok {
		return &exitError{code: 1, err: fmt.Errorf("%s: not a supervisord configuration (no [supervisord] or [program:x] section)", src)}
	}
	cfg, files, err := config.ConvertSupervisord(src, config.Options{Environ: os.Environ()})
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintln(cmd.ErrOrStderr(), e)
		}
		return &exitError{code: 1}
	}
	if err := os.MkdirAll(filepath.Join(out, "conf.d"), 0o755); err != nil {
		return &exitError{code: 1, err: err}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	for _, f := range files {
		p := filepath.Join(out, filepath.FromSlash(f.Name))
		// circled convert may run as root into a directory others can
		// write: never through a symlink, only a regular file.
		fh, err := openConverted(p, flags)
		if errors.Is(err, fs.ErrExist) {
			return &exitError{code: 1, err: fmt.Errorf("%s already exists (use --force to overwrite)", p)}
		}
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		_, err = fh.Write(f.Data)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), p)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	return nil
}

// openConverted opens p through internal/safefile (no symlink followed,
// regular files only, truncation only after the checks).
func openConverted(p string, flags int) (*os.File, error) {
	d, err := safefile.OpenDir(filepath.Dir(p), false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.OpenFile(filepath.Base(p), flags, 0o644)
}
