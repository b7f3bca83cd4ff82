package cgroup

import (
	"path/filepath"
	"testing"
)

func TestPopulatedLine(t *testing.T) {
	for _, c := range []struct {
		in        string
		populated bool
		ok        bool
	}{
		{"populated 0\nfrozen 0\n", false, true},
		{"populated 1\nfrozen 0\n", true, true},
		{"frozen 0\npopulated 1\n", true, true},
		{"populated 0", false, false}, // cut short: read again
		{"frozen 0\n", false, false},
		{"", false, false},
	} {
		p, ok := populatedLine([]byte(c.in))
		if p != c.populated || ok != c.ok {
			t.Errorf("populatedLine(%q) = %v, %v; want %v, %v", c.in, p, ok, c.populated, c.ok)
		}
	}
}

// A removed cgroup is empty.
func TestPopulatedPathMissing(t *testing.T) {
	if PopulatedPath(filepath.Join(t.TempDir(), "gone")) {
		t.Fatal("a cgroup that does not exist is populated")
	}
}
