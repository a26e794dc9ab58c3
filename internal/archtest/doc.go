// Package archtest holds tests of the repository's structure rather than of
// a package's behaviour: which packages may import which (imports_test.go;
// the rule is described in docs/architecture.md) and what the production
// build links (nodev_test.go). It has no code of its own.
package archtest
