//go:build linux

// Command child is the watchers' program of the live-upgrade black-box
// tests (cmd/circled/upgrade_blackbox_linux_test.go). It is not part of
// the product. It records every catchable signal it receives, one line
// per signal ("signal SIGHUP"), in SIGFILE (O_APPEND, one write per line).
//
//	child flood SIGFILE [GO]   once the file GO exists (at once without GO), write
//	                           "N\n" for N = 0, 1, 2, ... to stdout as fast as it can, through a 1021-byte buffer (so writes cut
//	                           lines anywhere); on SIGTERM/SIGINT: flush, write
//	                           "exit after N lines" to SIGFILE, exit 0; a failed
//	                           write: "write error: ..." to SIGFILE, exit 3
//	child quiet SIGFILE LINE   print LINE on stdout, then wait; exit 0 on SIGTERM/SIGINT
//	child serve SIGFILE        accept on descriptor 3 (an inherited listening
//	                           socket) and answer each connection "pid N\n"
//	child crash STARTS         append "start pid=N" to STARTS, exit 1 at once
//
// Every running mode writes "ready MODE pid=N" to SIGFILE first.
//
// The Go runtime preempts goroutines with SIGURG, which signal.Notify
// would report like any other: the program re-executes itself once with
// GODEBUG=asyncpreemptoff=1, so a SIGURG it records was sent to it.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: child flood SIGFILE | quiet SIGFILE LINE | crash STARTS")
		os.Exit(2)
	}
	mode := os.Args[1]
	if mode == "crash" {
		appendLine(os.Args[2], fmt.Sprintf("start pid=%d", os.Getpid()))
		os.Exit(1)
	}
	if !strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		env := append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, os.Args, env)
		}
		fmt.Fprintln(os.Stderr, "re-exec:", err)
		os.Exit(2)
	}
	sigfile := os.Args[2]
	var stop atomic.Bool
	sigs := make(chan os.Signal, 64)
	var catch []os.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		if s == syscall.SIGKILL || s == syscall.SIGSTOP {
			continue
		}
		// 32 and 33 are glibc's; the Go runtime refuses nothing else.
		catch = append(catch, s)
	}
	signal.Notify(sigs, catch...)
	appendLine(sigfile, fmt.Sprintf("ready %s pid=%d", mode, os.Getpid()))
	go func() {
		for s := range sigs {
			appendLine(sigfile, "signal "+name(s.(syscall.Signal)))
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				stop.Store(true)
				if mode != "flood" {
					os.Exit(0)
				}
			}
		}
	}()
	switch mode {
	case "flood":
		if len(os.Args) > 3 {
			for !stop.Load() {
				if _, err := os.Stat(os.Args[3]); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		w := bufio.NewWriterSize(os.Stdout, 1021)
		var b []byte
		n := 0
		for !stop.Load() {
			b = strconv.AppendInt(b[:0], int64(n), 10)
			b = append(b, '\n')
			if _, err := w.Write(b); err != nil {
				appendLine(sigfile, fmt.Sprintf("write error after %d lines: %v", n, err))
				os.Exit(3)
			}
			n++
		}
		if err := w.Flush(); err != nil {
			appendLine(sigfile, fmt.Sprintf("write error after %d lines: %v", n, err))
			os.Exit(3)
		}
		appendLine(sigfile, fmt.Sprintf("exit after %d lines", n))
		os.Exit(0)
	case "quiet":
		fmt.Println(os.Args[3])
		select {}
	case "serve":
		ln, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			appendLine(sigfile, "serve: "+err.Error())
			os.Exit(3)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				appendLine(sigfile, "accept: "+err.Error())
				os.Exit(3)
			}
			fmt.Fprintf(c, "pid %d\n", os.Getpid())
			c.Close()
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
}

func name(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return "SIG" + strconv.Itoa(int(s))
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	f.Write([]byte(line + "\n"))
	f.Close()
}
