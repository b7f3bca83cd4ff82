package sockets

import (
	"errors"
	"testing"

	"github.com/circle-supervisor/circle/supervisor/config"
)

func TestNotSupportedOnWindows(t *testing.T) {
	_, err := BindAll([]config.Socket{{Name: "web", Family: "AF_INET", Host: "127.0.0.1", Port: 0}})
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("BindAll: %v", err)
	}
}
