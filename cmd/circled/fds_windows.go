package main

// closeInheritedFDs: Windows children inherit only the handles passed to
// them explicitly (os/exec sets bInheritHandles with an explicit list).
func closeInheritedFDs() {}
