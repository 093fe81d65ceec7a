package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
)

// groupChunk bounds the members one PATCH carries.
const groupChunk = 500

// SyncGroups writes group memberships (user group, device groups) batched per group: one
// PATCH per group and chunk, whatever the number of users that changed.
func (a *Activities) SyncGroups(ctx context.Context, in RunRef) (GroupsResult, error) {
	var res GroupsResult
	deltas, err := a.Store.GroupDeltas(ctx, in.Org)
	if err != nil {
		return res, err
	}
	for _, d := range deltas {
		id, err := a.groupID(ctx, in.Org, d.Name)
		if err != nil {
			return res, err
		}
		for len(d.Add) > 0 || len(d.Remove) > 0 {
			add, remove := take(&d.Add, groupChunk), take(&d.Remove, groupChunk)
			if err := a.Target.PatchGroupMembers(ctx, id, add, remove); err != nil {
				return res, fmt.Errorf("group %q: %w", d.Name, err)
			}
			if err := a.Store.SaveGroupMembers(ctx, in.Org, d.Name, add, remove); err != nil {
				return res, err
			}
			res.Added += len(add)
			res.Removed += len(remove)
			activity.RecordHeartbeat(ctx, res)
		}
		res.Groups++
	}
	return res, nil
}

func take(s *[]string, n int) []string {
	if len(*s) < n {
		n = len(*s)
	}
	head := (*s)[:n]
	*s = (*s)[n:]
	return head
}

// groupID finds or creates the target group, caching its ID.
func (a *Activities) groupID(ctx context.Context, org, name string) (string, error) {
	id, err := a.Store.ScimGroupID(ctx, org, name)
	if err != nil || id != "" {
		return id, err
	}
	g, err := a.Target.FindGroup(ctx, name)
	if err != nil {
		return "", err
	}
	if g == nil {
		if g, err = a.Target.CreateGroup(ctx, name); err != nil {
			return "", fmt.Errorf("create group %q: %w", name, err)
		}
	}
	return g.ID, a.Store.SaveScimGroupID(ctx, org, name, g.ID)
}
