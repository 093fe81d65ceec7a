package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/watch"
)

// ChangeMarker is a directory's changes (*watch.Directory).
type ChangeMarker interface {
	watch.Source
	Close() error
}

// WatchDirectory is watch mode's long-running step: it returns once the organization's
// directory changed and the burst of changes ended (debounced, package watch), or unchanged
// after watch.DefaultGive. It heartbeats every watch.Timing.Poll with the mark to resume from
// (OpenLDAP: a content synchronization cookie), so that a retried attempt misses no change
// made meanwhile. A directory error fails the
// attempt (retried with backoff by the workflow's policy); one that keeps no change mark is
// permanent.
func (a *Activities) WatchDirectory(ctx context.Context, in steps.WatchInput) (steps.WatchResult, error) {
	o, err := a.org(ctx, in.Org)
	if err != nil {
		return steps.WatchResult{}, err
	}
	if o.Watch == nil {
		return steps.WatchResult{}, temporal.NewNonRetryableApplicationError("this worker cannot watch the directory", "WatchUnsupported", nil)
	}
	since := in.Since
	beat := func(string) {}
	if activity.IsActivity(ctx) {
		if activity.HasHeartbeatDetails(ctx) {
			var m string
			if activity.GetHeartbeatDetails(ctx, &m) == nil && m != "" {
				since = m
			}
		}
		beat = func(m string) { activity.RecordHeartbeat(ctx, m) }
	}
	p, err := o.Watch(ctx)
	if err != nil {
		return steps.WatchResult{}, err
	}
	defer p.Close()
	res, err := watch.Wait(ctx, p, since, a.WatchTiming, beat)
	if errors.Is(err, watch.ErrNoMark) {
		return steps.WatchResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "WatchUnsupported", nil)
	}
	if err != nil {
		return steps.WatchResult{}, err
	}
	return steps.WatchResult{Changed: res.Changed, Changes: res.Changes, Mark: res.Mark}, nil
}
