package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
)

// groupChunk bounds the members one PATCH carries.
const groupChunk = 500

// groupsProgress is SyncGroups' heartbeat details: what the step did over all its attempts.
// A retried attempt resumes from it: the counts go on, and a chunk the target took but the
// attempt before could not record (Written) is recorded without being sent again.
type groupsProgress struct {
	Result steps.GroupsResult `json:"result"`
	// Chunks counts the chunks written and recorded.
	Chunks int `json:"chunks"`
	// Group is the group counted last in Result.Groups (a resumed attempt may start in it).
	Group string `json:"group,omitempty"`
	// Written is a chunk the target took (its PATCH succeeded) that is not recorded yet.
	Written *writtenChunk `json:"written,omitempty"`
}

// writtenChunk is one PATCH of a group's members (target user IDs).
type writtenChunk struct {
	Group  string   `json:"group"`
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// SyncGroups writes group memberships (user group, device groups) batched per group: one
// PATCH per group and chunk of up to groupChunk additions and removals, whatever the number
// of users that changed. The changes stream from the store: memory holds one chunk.
//
// Each chunk is acknowledged in the heartbeat details once the target took it, and again once
// it is recorded (store.SaveGroupMembers). A retried attempt resumes from the details: a chunk
// recorded is not among the changes the store computes again, and a chunk the target took but
// the failed attempt did not record is recorded from the details, not sent again.
//
// Cancellation (disable) is honoured between chunks: a PATCH in flight runs to its end and is
// recorded, so that nothing writes to the target once the step has ended (the workflow waits
// for it: WaitForCancellation). A stall (no chunk done within the heartbeat timeout) ends
// even the PATCH in flight: the retry resends that chunk, which the target takes as the same
// change.
func (a *Activities) SyncGroups(ctx context.Context, in steps.RunRef) (_ steps.GroupsResult, err error) {
	var hb groupsProgress
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		if derr := activity.GetHeartbeatDetails(ctx, &hb); derr != nil {
			hb = groupsProgress{} // unreadable (an older worker's): start over, as before
		}
	}
	o, err := a.org(ctx, in.Org)
	if err != nil {
		return steps.GroupsResult{}, err
	}
	ctx, p := startProgress(ctx, func() any { return hb })
	defer p.end(&err)
	wctx, cancel := p.writeContext(ctx)
	defer cancel()
	if w := hb.Written; w != nil {
		if err := a.Store.SaveGroupMembers(wctx, in.Org, w.Group, w.Add, w.Remove); err != nil {
			return hb.Result, err
		}
		hb.Written = nil
		hb.Chunks++
		p.ack()
	}
	current, id := "", ""
	err = a.Store.GroupDeltas(ctx, in.Org, attemptKey(ctx, in.RunID), groupChunk, func(d store.GroupDelta) error {
		if err := ctx.Err(); err != nil {
			return err // cancelled, or stalled: no new write starts
		}
		if d.Name != current {
			var err error
			if id, err = a.groupID(wctx, o.Target, in.Org, d.Name); err != nil {
				return err
			}
			current = d.Name
			if d.Name != hb.Group {
				hb.Group = d.Name
				hb.Result.Groups++
			}
		}
		if err := o.Target.PatchGroupMembers(wctx, id, d.Add, d.Remove); err != nil {
			if scim.IsNotFound(err) {
				// Deleted in the target: forgotten here, so that the retried step creates it
				// again with every member instead of failing on the cached ID every run.
				if ferr := a.Store.ForgetScimGroup(wctx, in.Org, d.Name); ferr != nil {
					return ferr
				}
				return fmt.Errorf("group %q is gone from the target; it is created again: %w", d.Name, err)
			}
			return targetError(fmt.Errorf("group %q: %w", d.Name, err))
		}
		hb.Result.Added += len(d.Add)
		hb.Result.Removed += len(d.Remove)
		hb.Written = &writtenChunk{Group: d.Name, Add: d.Add, Remove: d.Remove}
		p.ack()
		if err := a.Store.SaveGroupMembers(wctx, in.Org, d.Name, d.Add, d.Remove); err != nil {
			return err
		}
		hb.Written = nil
		hb.Chunks++
		p.ack()
		return nil
	})
	return hb.Result, err
}

// groupID finds or creates the target group, caching its ID.
func (a *Activities) groupID(ctx context.Context, t Target, org, name string) (string, error) {
	id, err := a.Store.ScimGroupID(ctx, org, name)
	if err != nil || id != "" {
		return id, err
	}
	g, err := t.FindGroup(ctx, name)
	if err != nil {
		return "", targetError(err)
	}
	if g == nil {
		if g, err = t.CreateGroup(ctx, name); err != nil {
			return "", targetError(fmt.Errorf("create group %q: %w", name, err))
		}
	}
	return g.ID, a.Store.SaveScimGroupID(ctx, org, name, g.ID)
}
