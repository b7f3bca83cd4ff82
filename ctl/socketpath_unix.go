//go:build unix

package ctl

import "os"

func defaultSocketPath() string {
	return unixDefault(os.Geteuid(), os.Getenv, rootSocketPath)
}
