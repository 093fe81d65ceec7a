package activities

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/watch"
)

// fakeMarks is a directory whose change mark is mark (or err).
type fakeMarks struct {
	mark   string
	err    error
	closed bool
	poll   *watch.Poller
}

func (f *fakeMarks) Mark(context.Context) (string, error) { return f.mark, f.err }
func (f *fakeMarks) Close() error                         { f.closed = true; return nil }
func (f *fakeMarks) Start(ctx context.Context, since string, poll time.Duration) (string, bool, error) {
	f.poll = &watch.Poller{Mark: f.Mark}
	return f.poll.Start(ctx, since, poll)
}
func (f *fakeMarks) Next(ctx context.Context, until time.Time) (string, bool, error) {
	return f.poll.Next(ctx, until)
}

func watchActs(f *fakeMarks) *Activities {
	return &Activities{Orgs: Single("acme", Org{Watch: func(context.Context) (ChangeMarker, error) { return f, nil }}),
		WatchTiming: watch.Timing{Poll: 1, Quiet: 1, Max: 1}}
}

// A change made since the mark the last watch returned (while its sync ran) is seen at once.
func TestWatchDirectoryReturnsAChangeSinceTheLastMark(t *testing.T) {
	f := &fakeMarks{mark: "csn-7"}
	res, err := watchActs(f).WatchDirectory(context.Background(), steps.WatchInput{Org: "acme", Since: "csn-6"})
	require.NoError(t, err)
	require.Equal(t, steps.WatchResult{Changed: true, Changes: 1, Mark: "csn-7"}, res)
	require.True(t, f.closed, "the watch's connection is closed")
}

// A directory that keeps no change mark stops the watch for good (the schedule goes on); a
// read error is retried.
func TestWatchDirectoryErrors(t *testing.T) {
	f := &fakeMarks{err: fmt.Errorf("directory ldap://x: %w", watch.ErrNoMark)}
	_, err := watchActs(f).WatchDirectory(context.Background(), steps.WatchInput{Org: "acme"})
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.True(t, ae.NonRetryable())

	f = &fakeMarks{err: fmt.Errorf("connection reset")}
	_, err = watchActs(f).WatchDirectory(context.Background(), steps.WatchInput{Org: "acme"})
	require.Error(t, err)
	ae = nil
	require.False(t, errors.As(err, &ae) && ae.NonRetryable(), "a read error is retried")
}
