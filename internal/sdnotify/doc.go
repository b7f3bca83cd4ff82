// Package sdnotify sends systemd service notifications (sd_notify(3)) to
// $NOTIFY_SOCKET without cgo: one unix datagram per message.
//
// It owns circled's own notifications to systemd: circled calls
// FromEnv(true) once at startup and sends through the returned Notifier
// (a Notifier without a socket sends nothing, so calls are unconditional):
//
//	n.Ready()     // "READY=1": startup (or a reload) finished
//	n.Reloading() // "RELOADING=1": a reload begins; send Ready() when done
//	n.Stopping()  // "STOPPING=1": shutdown begins
//
// Children must not inherit NOTIFY_SOCKET: a supervised program that speaks
// sd_notify would otherwise report to systemd on the supervisor's behalf
// (systemd drops it with NotifyAccess=main, but logs a warning each time).
// FromEnv(true) unsets it: call it before the environment is copied
// anywhere. (The notify socket circled offers its children is
// internal/ready's; its tests speak to it as a supervised program does,
// with the package-level Notify and Status, which read $NOTIFY_SOCKET
// each time.)
//
// Abstract socket names ("@name") are supported. Other address families
// that newer systemd versions accept (vsock:...) are reported as errors.
package sdnotify
