package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// progress is the heartbeat of a bulk step (directory read, plan, groups). It heartbeats only
// when the step makes progress (items done), with what is done so far as the details, so
// that a step that stops progressing (a hung LDAP search, SQL statement or HTTP request) is
// timed out by the activity's HeartbeatTimeout and retried, instead of holding its attempt
// for the whole StartToCloseTimeout. One long single operation (a statement, a search page)
// must therefore stay under the HeartbeatTimeout (2 minutes for the bulk steps).
//
// A stalled attempt is also stopped here: when nothing progressed for three quarters of the
// HeartbeatTimeout, the step's context is cancelled with errStalled and the attempt fails
// (it is retried). Without that, the server would time the attempt out and start the next
// one while the stalled one still runs: a stalled attempt sends no heartbeat, so it never
// learns of its timeout, and it could wake up and write beside its retry. Stopping well before
// the server's timeout (a quarter of it is left for the cancelled operation to return, on a
// loaded machine) means the retry never starts beside it.
type progress struct {
	ctx     context.Context // the attempt's, and nil outside an activity (a direct call, as in tests)
	details func() any      // what is done so far
	cancel  context.CancelCauseFunc
	// writes is the context of writes to the target: ended by a stall, not by the activity's
	// cancellation (writeContext).
	writes      context.Context
	writeCancel context.CancelCauseFunc
	timeout     time.Duration // the activity's HeartbeatTimeout; 0: none
	done        chan struct{}
	wg          sync.WaitGroup

	mu   sync.Mutex
	last time.Time // of the last progress
	sent time.Time // of the last throttled heartbeat (tick)
}

// errStalled is the cause a stalled attempt's context is cancelled with.
var errStalled = errors.New("no progress within the heartbeat timeout")

// startProgress starts a step's heartbeat: details returns what the step has done so far (it
// is called on the step's goroutines, from tick and ack). The step runs on the returned
// context and ends with p.end(&err).
func startProgress(ctx context.Context, details func() any) (context.Context, *progress) {
	p := &progress{details: details, done: make(chan struct{})}
	p.writes, p.writeCancel = context.WithCancelCause(context.WithoutCancel(ctx))
	if !activity.IsActivity(ctx) {
		return ctx, p
	}
	p.timeout = activity.GetInfo(ctx).HeartbeatTimeout
	ctx, p.cancel = context.WithCancelCause(ctx)
	// The first heartbeat waits a tick too: an attempt that ends within it (most user writes)
	// sends none, instead of one RPC per user to the server (the stall watch runs anyway).
	p.ctx, p.last = ctx, time.Now()
	p.sent = p.last
	if p.timeout > 0 {
		p.wg.Add(1)
		go p.watch()
	}
	return ctx, p
}

// tickEvery bounds how often tick heartbeats. An eighth of the timeout: a paced user write
// waits up to 2 x paceWithin (10 s) for its request's slot, and under a second, the first
// tick after that wait sent one heartbeat per user, a write on the Temporal server for every
// user of a slow target (issue 10). It stays safe: progress comes at least every 3/4 of the
// timeout (else watch stops the attempt), so a heartbeat reaches the server within 7/8 of
// it; the SDK batches the later ones anyway (at most one per 0.8 x timeout).
func (p *progress) tickEvery() time.Duration {
	if p.timeout > 0 {
		return p.timeout / 8
	}
	return time.Second
}

// tick says that something was done. It heartbeats (with the details) at most every
// tickEvery: cheap enough to call per item.
func (p *progress) tick() {
	if p.ctx == nil {
		return
	}
	now := time.Now()
	p.mu.Lock()
	p.last = now
	send := now.Sub(p.sent) >= p.tickEvery()
	if send {
		p.sent = now
	}
	p.mu.Unlock()
	if send {
		activity.RecordHeartbeat(p.ctx, p.details())
	}
}

// ack says that something was done that a retried attempt must know of: the details are
// recorded now, never skipped (the SDK sends the newest details at the end of its batching
// interval, and at once when the attempt fails).
func (p *progress) ack() {
	if p.ctx == nil {
		return
	}
	p.mu.Lock()
	p.last = time.Now()
	p.mu.Unlock()
	activity.RecordHeartbeat(p.ctx, p.details())
}

// watch cancels the step when nothing progressed for three quarters of the heartbeat timeout.
func (p *progress) watch() {
	defer p.wg.Done()
	limit := p.timeout * 3 / 4
	t := time.NewTicker(max(p.timeout/40, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.ctx.Done():
			return
		case <-t.C:
			p.mu.Lock()
			idle := time.Since(p.last)
			p.mu.Unlock()
			if idle > limit {
				err := fmt.Errorf("%w (%s): attempt %d abandoned after %s without progress",
					errStalled, p.timeout, activity.GetInfo(p.ctx).Attempt, idle.Round(time.Millisecond))
				p.writeCancel(err)
				p.cancel(err)
				return
			}
		}
	}
}

// end stops the heartbeat. A step that was stalled fails with the stall as its error
// (retryable), whatever error its cancelled operation gave.
func (p *progress) end(err *error) {
	if p.ctx == nil {
		p.writeCancel(nil)
		return
	}
	close(p.done)
	p.wg.Wait()
	if cause := context.Cause(p.ctx); errors.Is(cause, errStalled) && *err != nil {
		*err = fmt.Errorf("%w (%v)", cause, *err)
	}
	p.writeCancel(nil)
	p.cancel(nil)
}

// writeContext is the step's context (ctx) for writes to the target: not ended by the
// activity's cancellation (disable), so that a write once sent runs to its end and its outcome
// is known and recorded; cancellation is honoured between writes. A stall still ends it (the
// attempt must stop before its retry starts, even in the middle of a hung request), and so
// does the attempt's deadline.
func (p *progress) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(p.writes, d)
	}
	return context.WithCancel(p.writes)
}

// attemptKey names scratch rows of one attempt of a run's activity, so that a retry never
// shares them with an attempt that may still be running.
func attemptKey(ctx context.Context, runID string) string {
	if !activity.IsActivity(ctx) {
		return runID
	}
	return fmt.Sprintf("%s#%d", runID, activity.GetInfo(ctx).Attempt)
}
