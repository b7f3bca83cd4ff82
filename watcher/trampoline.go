package watcher

// The trampoline applies what exec.Cmd cannot set per child (umask,
// resource limits): the child is circled itself, run with trampolineArg,
// which applies them and then execs the real program, keeping the pid.
// Binaries that start watchers call RunTrampolineIfRequested first thing
// in main (and TestMain in tests).

const trampolineArg = "__circled-exec"
