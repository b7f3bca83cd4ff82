package evlistener

import (
	"fmt"
	"testing"
)

func TestLogEvents(t *testing.T) {
	b := NewBus("")
	defer b.Close()
	next := &teeSink{}
	names := func(wid int) (string, string) { return fmt.Sprintf("web_%d", wid), "web" }
	out := b.LogEvents(next, "stderr", names).Open(2, 77)
	out.Write([]byte("before any pool\n"))
	p, _ := newPool(t, b, "logs", 10, "PROCESS_LOG")
	other, _ := newPool(t, b, "stdout-only", 10, "PROCESS_LOG_STDOUT")
	out.Write([]byte("héllo\n"))
	out.Write([]byte("two"))
	out.Close()
	want := fmt.Sprint([]string{
		"PROCESS_LOG_STDERR processname:web_2 groupname:web pid:77 channel:stderr\nhéllo\n",
		"PROCESS_LOG_STDERR processname:web_2 groupname:web pid:77 channel:stderr\ntwo",
	})
	if got := fmt.Sprint(buffered(p)); got != want {
		t.Errorf("events\n%s\nwant\n%s", got, want)
	}
	if n := len(buffered(other)); n != 0 {
		t.Errorf("the stdout pool got %d stderr events", n)
	}
	if next.String() != "before any pool\nhéllo\ntwo" || !next.closed || next.wid != 2 || next.pid != 77 {
		t.Errorf("next got %q closed=%v wid=%d pid=%d", next.String(), next.closed, next.wid, next.pid)
	}
}
