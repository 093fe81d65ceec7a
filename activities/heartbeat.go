package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeatEvery is how often the bulk steps (directory read, plan, groups) heartbeat.
const heartbeatEvery = 20 * time.Second

// keepAlive heartbeats until stop is called. The bulk steps spend long stretches inside one
// SQL statement or LDAP search; without it a heartbeat timeout there would start a second
// attempt while the first still runs. A worker that dies stops heartbeating all the same.
func keepAlive(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) { // called directly, as in tests
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// attemptKey names scratch rows of one attempt of a run's activity, so that a retry never
// shares them with an attempt that may still be running.
func attemptKey(ctx context.Context, runID string) string {
	if !activity.IsActivity(ctx) {
		return runID
	}
	return fmt.Sprintf("%s#%d", runID, activity.GetInfo(ctx).Attempt)
}
