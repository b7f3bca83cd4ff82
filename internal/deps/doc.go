// Package deps holds no code: its test pins the direction of imports
// between circle's packages (docs/DESIGN.md, "Packages and the direction of
// imports").
package deps
