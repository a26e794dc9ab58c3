//go:build !unix

package eslite

// lockDir does not lock where flock is missing: one store at a time per
// directory is then the user's to keep.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
