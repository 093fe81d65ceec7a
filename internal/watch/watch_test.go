package watch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// marks is a directory whose mark the test moves.
type marks struct {
	mu   sync.Mutex
	mark string
	err  error
}

func (m *marks) set(v string) { m.mu.Lock(); m.mark = v; m.mu.Unlock() }
func (m *marks) read(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mark, m.err
}

func poll(m *marks) *Poller { return &Poller{Mark: m.read} }

var fast = Timing{Poll: 10 * time.Millisecond, Quiet: 50 * time.Millisecond, Max: 300 * time.Millisecond, Give: time.Second}

func TestABurstOfChangesIsOneResultAfterTheQuiet(t *testing.T) {
	m := &marks{mark: "1"}
	go func() {
		for i := 2; i <= 5; i++ { // changes 20 ms apart: within the quiet window
			time.Sleep(20 * time.Millisecond)
			m.set(string(rune('0' + i)))
		}
	}()
	start := time.Now()
	res, err := Wait(context.Background(), poll(m), "", fast, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Mark != "5" || res.Changes < 2 {
		t.Fatalf("want one result for the whole burst ending at mark 5, got %+v", res)
	}
	if d := time.Since(start); d < 80*time.Millisecond+fast.Quiet {
		t.Fatalf("returned %s after start: before the burst ended and went quiet", d)
	}
}

func TestAChangeMadeBeforeTheWatchIsSeenFromSince(t *testing.T) {
	m := &marks{mark: "7"}
	res, err := Wait(context.Background(), poll(m), "6", fast, func(string) {})
	if err != nil || !res.Changed || res.Mark != "7" {
		t.Fatalf("want the change since mark 6, got %+v, %v", res, err)
	}
}

func TestEndlessChangesEndAtMax(t *testing.T) {
	m := &marks{mark: "0"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			m.set(time.Now().String())
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	res, err := Wait(ctx, poll(m), "", fast, func(string) {})
	if err != nil || !res.Changed {
		t.Fatalf("%+v %v", res, err)
	}
	if d := time.Since(start); d > fast.Max+200*time.Millisecond {
		t.Fatalf("a directory that never goes quiet held the sync back %s (max %s)", d, fast.Max)
	}
}

func TestNoChangeGivesUpAndAReadErrorEndsIt(t *testing.T) {
	m := &marks{mark: "1"}
	beats := 0
	res, err := Wait(context.Background(), poll(m), "", fast, func(string) { beats++ })
	if err != nil || res.Changed || res.Mark != "1" {
		t.Fatalf("want unchanged at mark 1 after Give, got %+v, %v", res, err)
	}
	if beats < 10 {
		t.Fatalf("heartbeats: %d, want one per read", beats)
	}
	m.err = errors.New("connection reset")
	if _, err := Wait(context.Background(), poll(m), "1", fast, func(string) {}); err == nil {
		t.Fatal("a read error must end the watch")
	}
}
