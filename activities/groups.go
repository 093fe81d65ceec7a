package activities

import (
	"context"
	"fmt"

	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
)

// groupChunk bounds the members one PATCH carries.
const groupChunk = 500

// SyncGroups writes group memberships (user group, device groups) batched per group: one
// PATCH per group and chunk of up to groupChunk additions and removals, whatever the number
// of users that changed. The changes stream from the store: memory holds one chunk.
func (a *Activities) SyncGroups(ctx context.Context, in steps.RunRef) (steps.GroupsResult, error) {
	defer keepAlive(ctx)()
	var res steps.GroupsResult
	current, id := "", ""
	err := a.Store.GroupDeltas(ctx, in.Org, attemptKey(ctx, in.RunID), groupChunk, func(d store.GroupDelta) error {
		if d.Name != current {
			var err error
			if id, err = a.groupID(ctx, in.Org, d.Name); err != nil {
				return err
			}
			current = d.Name
			res.Groups++
		}
		if err := a.Target.PatchGroupMembers(ctx, id, d.Add, d.Remove); err != nil {
			if scim.IsNotFound(err) {
				// Deleted in the target: forgotten here, so that the retried step creates it
				// again with every member instead of failing on the cached ID every run.
				if ferr := a.Store.ForgetScimGroup(ctx, in.Org, d.Name); ferr != nil {
					return ferr
				}
				return fmt.Errorf("group %q is gone from the target; it is created again: %w", d.Name, err)
			}
			return targetError(fmt.Errorf("group %q: %w", d.Name, err))
		}
		if err := a.Store.SaveGroupMembers(ctx, in.Org, d.Name, d.Add, d.Remove); err != nil {
			return err
		}
		res.Added += len(d.Add)
		res.Removed += len(d.Remove)
		return nil
	})
	return res, err
}

// groupID finds or creates the target group, caching its ID.
func (a *Activities) groupID(ctx context.Context, org, name string) (string, error) {
	id, err := a.Store.ScimGroupID(ctx, org, name)
	if err != nil || id != "" {
		return id, err
	}
	g, err := a.Target.FindGroup(ctx, name)
	if err != nil {
		return "", targetError(err)
	}
	if g == nil {
		if g, err = a.Target.CreateGroup(ctx, name); err != nil {
			return "", targetError(fmt.Errorf("create group %q: %w", name, err))
		}
	}
	return g.ID, a.Store.SaveScimGroupID(ctx, org, name, g.ID)
}
