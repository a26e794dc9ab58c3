//go:build unix

package eslite

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on path, so that one process at a time
// has a directory open; the returned function releases it.
func lockDir(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("eslite: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("eslite: %s is in use by another process: %w", path, err)
	}
	return f.Close, nil
}
