package ready

import "os"

// Hand: there are no notify sockets on Windows.
func (n *NotifySocket) Hand() (NotifyHandover, *os.File, error) {
	return NotifyHandover{}, nil, ErrNotSupported
}

// Resume: there are no notify sockets on Windows.
func (n *NotifySocket) Resume() {}

// AdoptNotify: there are no notify sockets on Windows.
func AdoptNotify(int, NotifyHandover, NotifyOptions) (*NotifySocket, error) {
	return nil, ErrNotSupported
}
