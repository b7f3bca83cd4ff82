//go:build unix

package main

import "os"

// stateTempFile puts data in a temporary file in dir (circled's socket
// directory: only circled's user may write there), unlinked at once.
func stateTempFile(dir string, data []byte) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".circled-upgrade-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
