package store

import "time"

// SetMirrorLockWait sets how long LockMirror waits for another holder, until the test ends.
func SetMirrorLockWait(d time.Duration) (restore func()) {
	old := mirrorLockWait
	mirrorLockWait = d
	return func() { mirrorLockWait = old }
}
