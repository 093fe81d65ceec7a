package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/store"
)

// queueAhead is how far ahead of now the next free slot of key is (0 when none is taken).
func queueAhead(t *testing.T, ctx context.Context, st *store.Store, key string) time.Duration {
	t.Helper()
	var next, now time.Time
	err := st.Pool().QueryRow(ctx, `SELECT next_at, clock_timestamp() FROM request_slots WHERE key=$1`, key).Scan(&next, &now)
	require.NoError(t, err)
	return max(next.Sub(now), 0)
}

// Admit lets a caller in (taking its first slot) while the queue is short; beyond, it takes no
// slot and hands out turns one slot apart, from when the queue has room; a caller coming back
// at its turn is let in whatever the queue, once.
func TestPacerAdmitsWhileTheQueueIsShortAndHandsOutTurnsBeyond(t *testing.T) {
	st, ctx := openStore(t)
	const key = "scim/acme"
	p := st.Pacer(key, 10) // one slot every 100ms
	const within = time.Second

	wait, ok, err := p.Admit(ctx, "run/1", within)
	require.NoError(t, err)
	require.True(t, ok, "empty queue: let in")
	require.Less(t, wait, 50*time.Millisecond, "its slot is now")
	require.InDelta(t, 100*time.Millisecond, queueAhead(t, ctx, st, key), float64(30*time.Millisecond), "one slot taken")

	// Others took slots 5s ahead.
	_, err = st.Pool().Exec(ctx, `UPDATE request_slots SET next_at = clock_timestamp() + interval '5 s' WHERE key=$1`, key)
	require.NoError(t, err)
	var turns []time.Duration
	for i := 2; i <= 4; i++ {
		later, ok, err := p.Admit(ctx, fmt.Sprintf("run/%d", i), within)
		require.NoError(t, err)
		require.False(t, ok, "queue 5s long: sent away")
		turns = append(turns, later)
	}
	require.InDelta(t, 4500*time.Millisecond, turns[0], float64(100*time.Millisecond), "back when the queue is within/2 long")
	require.InDelta(t, 200*time.Millisecond, turns[1]-turns[0], float64(30*time.Millisecond), "turns two slots apart")
	require.InDelta(t, 200*time.Millisecond, turns[2]-turns[1], float64(30*time.Millisecond))
	require.InDelta(t, 5*time.Second, queueAhead(t, ctx, st, key), float64(100*time.Millisecond), "no slot taken by those sent away")

	// run/3 comes back at its turn, the queue now 1.5s long (others took slots meanwhile): let
	// in before newcomers, whom such a queue sends away.
	_, err = st.Pool().Exec(ctx, `UPDATE request_slots SET next_at = clock_timestamp() + interval '1500 ms' WHERE key=$1`, key)
	require.NoError(t, err)
	_, ok, err = p.Admit(ctx, "run/7", within)
	require.NoError(t, err)
	require.False(t, ok, "a newcomer waits for a shorter queue")
	wait, ok, err = p.Admit(ctx, "run/3", within)
	require.NoError(t, err)
	require.True(t, ok, "a caller at its turn is let in")
	require.InDelta(t, 1500*time.Millisecond, wait, float64(100*time.Millisecond), "its slot at the queue's end")
	// Its turn is used up: coming again while the queue is long, it gets a new one, after the
	// turns given before.
	later, ok, err := p.Admit(ctx, "run/3", within)
	require.NoError(t, err)
	require.False(t, ok)
	require.Greater(t, later, turns[2])
	// Coming back at a turn to a queue longer than twice within, it is sent away again.
	_, err = st.Pool().Exec(ctx, `UPDATE request_slots SET next_at = clock_timestamp() + interval '5 s' WHERE key=$1`, key)
	require.NoError(t, err)
	_, ok, err = p.Admit(ctx, "run/3", within)
	require.NoError(t, err)
	require.False(t, ok)

	// The queue drained: newcomers are let in again.
	_, err = st.Pool().Exec(ctx, `UPDATE request_slots SET next_at = clock_timestamp() + interval '500 ms' WHERE key=$1`, key)
	require.NoError(t, err)
	wait, ok, err = p.Admit(ctx, "run/5", within)
	require.NoError(t, err)
	require.True(t, ok)
	require.InDelta(t, 500*time.Millisecond, wait, float64(50*time.Millisecond))

	// Turns of holders that never came back (a cancelled run) go after an hour.
	_, err = st.Pool().Exec(ctx, `INSERT INTO request_slots (key, next_at) VALUES ($1, now() - interval '2 hours')`, key+"/turn/gone/1")
	require.NoError(t, err)
	_, err = st.Pool().Exec(ctx, `UPDATE request_slots SET next_at = clock_timestamp() + interval '5 s' WHERE key=$1`, key)
	require.NoError(t, err)
	_, ok, err = p.Admit(ctx, "run/6", within)
	require.NoError(t, err)
	require.False(t, ok)
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM request_slots WHERE key=$1`, key+"/turn/gone/1").Scan(&n))
	require.Zero(t, n)
}

// Many callers at once, each making two requests (as a create and its PATCH) and retrying
// at its turn when sent away: an admitted caller queues a few times within for its requests,
// whatever the number of callers (without admission, the last would queue 6s), and the
// requests keep the pace.
func TestPacerAdmissionBoundsEachCallersQueueing(t *testing.T) {
	st, ctx := openStore(t)
	const rate = 50 // 20ms apart
	p := st.Pacer("scim/acme", rate)
	const within = 200 * time.Millisecond
	const callers = 150 // 300 requests: 6s of slots, thirty times within

	// Another worker holds the next 2s of slots: the callers find a queue longer than within
	// however slowly this machine starts them.
	_, err := st.Pool().Exec(ctx, `INSERT INTO request_slots (key, next_at) VALUES ($1, clock_timestamp() + interval '2 seconds')
		ON CONFLICT (key) DO UPDATE SET next_at = clock_timestamp() + interval '2 seconds'`, "scim/acme")
	require.NoError(t, err)
	var mu sync.Mutex
	var worst time.Duration
	var sent []time.Time
	sendAways := map[string]int{}
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprint("run/", i)
			for {
				wait, ok, err := p.Admit(ctx, holder, within)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					mu.Lock()
					sendAways[holder]++
					mu.Unlock()
					time.Sleep(wait)
					continue
				}
				start := time.Now()
				time.Sleep(wait) // the first request's slot, taken by Admit
				first := time.Now()
				if err := p.Wait(ctx); err != nil { // the second request's
					t.Error(err)
					return
				}
				mu.Lock()
				worst = max(worst, time.Since(start))
				sent = append(sent, first, time.Now())
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	require.Len(t, sent, 2*callers)
	require.Greater(t, len(sendAways), callers/2, "the queue was longer than within: callers were sent away")
	most := 0
	for _, n := range sendAways {
		most = max(most, n)
	}
	t.Logf("%d of %d callers sent away, at most %d times; an admitted caller queued at most %v for its two requests",
		len(sendAways), callers, most, worst)
	require.LessOrEqual(t, most, 3, "sent away a few times at most")
	// A first request queues at most twice within (a caller at its turn is let in up to
	// there), a second one also behind the second requests of the callers let in before it:
	// a bound that does not grow with the number of callers.
	require.Less(t, worst, 10*within, "an admitted caller's two requests")
	first, last := sent[0], sent[0]
	for _, at := range sent {
		if at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	require.GreaterOrEqual(t, last.Sub(first), time.Duration(2*callers-2)*time.Second/rate-100*time.Millisecond, "the pace held")
}
