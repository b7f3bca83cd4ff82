// Package docscheck holds no code: its tests check that README.md and
// docs/API.md stay true to the code (every config key documented).
package docscheck
