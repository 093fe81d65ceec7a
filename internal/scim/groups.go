package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// Group is a target group (user group or device group).
type Group struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// FindGroup returns the group with that displayName, or nil when none. Members are not
// fetched (groups can be large).
func (c *Client) FindGroup(ctx context.Context, displayName string) (*Group, error) {
	q := url.Values{"filter": {eqFilter("displayName", displayName)}, "excludedAttributes": {"members"},
		"startIndex": {"1"}, "count": {"2"}}
	var list listResponse
	if err := c.do(ctx, "GET", "/Groups", q, nil, &list); err != nil {
		return nil, err
	}
	switch len(list.Resources) {
	case 0:
		return nil, nil
	case 1:
		var g Group
		if err := json.Unmarshal(list.Resources[0], &g); err != nil {
			return nil, fmt.Errorf("scim: decode group %q: %w", displayName, err)
		}
		return &g, nil
	}
	return nil, fmt.Errorf("scim: %d groups have displayName %q", list.TotalResults, displayName)
}

// CreateGroup creates an empty group. When the name is taken (another worker created it
// first), it returns the existing group.
func (c *Client) CreateGroup(ctx context.Context, displayName string) (*Group, error) {
	body := map[string]any{"schemas": []string{coreGroupSchema}, "displayName": displayName}
	var g Group
	err := c.do(ctx, "POST", "/Groups", nil, body, &g)
	if IsConflict(err) {
		if existing, findErr := c.FindGroup(ctx, displayName); findErr == nil && existing != nil {
			return existing, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if g.ID == "" {
		// Created or not, we cannot use it: retried, the create finds it by its name.
		return nil, &Error{Op: "POST /Groups", Status: 201, Malformed: true, Detail: "answer has no id"}
	}
	return &g, nil
}

// PatchGroupMembers adds and removes members (user ids) in one PATCH. Adding a member twice
// or removing an absent one is harmless at RFC-conforming targets. The caller chunks large
// changes; nothing is sent when both lists are empty.
func (c *Client) PatchGroupMembers(ctx context.Context, groupID string, add, remove []string) error {
	var ops []patchOp
	if len(add) > 0 {
		members := make([]multiValue, 0, len(add))
		for _, id := range add {
			members = append(members, multiValue{Value: id})
		}
		ops = append(ops, patchOp{Op: "add", Path: "members", Value: members})
	}
	for _, id := range remove {
		ops = append(ops, patchOp{Op: "remove", Path: "members[value eq " + jsonString(id) + "]"})
	}
	if len(ops) == 0 {
		return nil
	}
	return c.patch(ctx, "/Groups/"+url.PathEscape(groupID), ops)
}
