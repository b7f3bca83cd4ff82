package ready

import "testing"

func listenNotifyForTest(*testing.T) *NotifySocket { return nil }

func closeNotifyForTest([]Check) {}

func TestNotifyNotSupported(t *testing.T) {
	if _, err := ListenNotify(NotifyOptions{Dir: `C:\x`}); err != ErrNotSupported {
		t.Fatal(err)
	}
}
