package docscheck

import (
	"os"
	"strings"
	"testing"

	"github.com/circle-supervisor/circle/supervisor/config"
)

// README names every config key of config's key table (each key is
// declared once there; the README's tables are written from it).
func TestReadmeNamesEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	check := func(section string, keys []config.KeyInfo) {
		for _, k := range keys {
			if k.Circus {
				continue // circus keys circled ignores: listed by name in "Deliberate differences"
			}
			name := k.Name
			// Stream keys are documented once for both streams, and
			// rlimit_* as a family.
			for _, p := range []string{"stdout_stream.", "stderr_stream."} {
				name = strings.TrimPrefix(name, p)
			}
			if strings.HasPrefix(name, "rlimit_") {
				name = "rlimit_NAME"
			}
			if !strings.Contains(readme, "`"+name+"`") {
				t.Errorf("README.md does not document the %s key `%s`", section, name)
			}
		}
	}
	check("[circled]", config.DaemonKeys())
	check("[watcher:NAME]", config.WatcherKeys())
}
