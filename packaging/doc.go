// Package packaging holds the release scripts (dist.sh, packages.sh), the
// nfpm config, the systemd unit, the config the packages install and the
// Kubernetes example. It has no code: its test (Linux only) builds the .deb
// the way `make packages` does, checks what it holds and, as root with
// dpkg, installs it, runs the installed binaries and purges it again; it
// also checks the archives of dist.sh.
package packaging
