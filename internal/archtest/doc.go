// Package archtest holds tests of the repository's structure rather than of
// a package's behaviour: which packages may import which (imports_test.go;
// the rule is described in docs/architecture.md). It has no code of its own.
package archtest
