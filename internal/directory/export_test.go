package directory

import "time"

// WithMemberRange makes the reader ask for group members in ranges of n (see memberRange).
func WithMemberRange(c Config, n int) Config { c.memberRange = n; return c }

// SetClock sets the time accountExpires is compared with.
func SetClock(r *Reader, now func() time.Time) { r.now = now }

// TLSOn reports whether the reader's connection is encrypted.
func TLSOn(r *Reader) bool { _, ok := r.conn.TLSConnectionState(); return ok }
