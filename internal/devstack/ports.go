package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now.
// Another process may take it before the caller binds it; tests accept that.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("devstack: no free TCP port on 127.0.0.1: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PortOpen reports whether something accepts TCP connections on addr.
func PortOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// WaitForPort blocks until addr accepts TCP connections or ctx ends.
func WaitForPort(ctx context.Context, addr string) error {
	return poll(ctx, func(context.Context) error {
		if PortOpen(addr) {
			return nil
		}
		return fmt.Errorf("nothing listens on %s", addr)
	})
}

// errGiveUp, wrapped in a check's error, ends poll at once.
var errGiveUp = errors.New("giving up")

// poll calls check every 100ms until it succeeds, fails with errGiveUp, or
// ctx ends; the error then says what the last check saw.
func poll(ctx context.Context, check func(context.Context) error) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		err := check(ctx)
		if err == nil || errors.Is(err, errGiveUp) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
