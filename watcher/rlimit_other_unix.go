//go:build unix && !linux

package watcher

func rlimitResource(name string) (int, bool) {
	r, ok := rlimitResources[name]
	return r, ok
}
