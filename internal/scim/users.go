package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/usersync/usersync/internal/plan"
)

// User is an account as read back from the target.
type User struct {
	ID          string
	ExternalID  string
	UserName    string
	Active      bool
	Email       string // the primary email, else the first
	GivenName   string
	FamilyName  string
	DisplayName string
	Roles       []string
	Products    []string // entitlement values, sorted
	// SettingsTemplate and Custom come from the organization's custom extension.
	SettingsTemplate string
	Custom           map[string]string
	Enterprise       map[string]string
	Version          string // meta.version (an ETag)
}

// State returns the user as a plan.Desired, for diffs against the desired state. Group
// memberships are not user attributes and stay empty.
func (u *User) State() plan.Desired {
	d := plan.Desired{ExternalID: u.ExternalID, UserName: u.UserName, Email: u.Email,
		GivenName: u.GivenName, FamilyName: u.FamilyName, DisplayName: u.DisplayName,
		Active: u.Active, Products: u.Products, SettingsTemplate: u.SettingsTemplate}
	if len(u.Roles) > 0 {
		d.Role = u.Roles[0]
	}
	if len(u.Enterprise) > 0 {
		d.Enterprise = u.Enterprise
	}
	if len(u.Custom) > 0 {
		d.Custom = u.Custom
	}
	return d
}

type multiValue struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

type wireUser struct {
	ID          string `json:"id"`
	ExternalID  string `json:"externalId"`
	UserName    string `json:"userName"`
	Active      *bool  `json:"active"`
	DisplayName string `json:"displayName"`
	Name        *struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Emails       []multiValue `json:"emails"`
	Entitlements []multiValue `json:"entitlements"`
	Roles        []multiValue `json:"roles"`
	Meta         struct {
		Version string `json:"version"`
	} `json:"meta"`
}

func parseUser(ext Extension, raw json.RawMessage) (*User, error) {
	ext = ext.Resolved()
	var w wireUser
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("scim: decode user: %w", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("scim: decode user %s: %w", w.ID, err)
	}
	u := &User{ID: w.ID, ExternalID: w.ExternalID, UserName: w.UserName, Active: w.Active != nil && *w.Active,
		DisplayName: w.DisplayName, Version: w.Meta.Version}
	if w.Name != nil {
		u.GivenName, u.FamilyName = w.Name.GivenName, w.Name.FamilyName
	}
	for i, e := range w.Emails {
		if i == 0 || e.Primary {
			u.Email = e.Value
		}
		if e.Primary {
			break
		}
	}
	for _, r := range w.Roles {
		u.Roles = append(u.Roles, r.Value)
	}
	for _, p := range w.Entitlements {
		u.Products = append(u.Products, p.Value)
	}
	sort.Strings(u.Products)
	u.Enterprise = extension(all, EnterpriseSchema)
	u.Custom = extension(all, ext.URN)
	for k, v := range u.Custom {
		if strings.EqualFold(k, ext.TemplateAttribute) {
			u.SettingsTemplate = v
			delete(u.Custom, k)
		}
	}
	if len(u.Custom) == 0 {
		u.Custom = nil
	}
	return u, nil
}

// extension reads an extension's simple attributes as strings (nil when absent).
func extension(all map[string]json.RawMessage, urn string) map[string]string {
	for k, raw := range all {
		if !strings.EqualFold(k, urn) {
			continue
		}
		var attrs map[string]any
		if json.Unmarshal(raw, &attrs) != nil {
			return nil
		}
		out := map[string]string{}
		for name, v := range attrs {
			switch t := v.(type) {
			case string:
				out[name] = t
			case nil, map[string]any, []any:
			default:
				out[name] = fmt.Sprint(t)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return nil
}

// FindUserByExternalID returns the account linked to a directory ID, or nil when none.
func (c *Client) FindUserByExternalID(ctx context.Context, ext Extension, extID string) (*User, error) {
	return c.findUser(ctx, ext, "externalId", extID)
}

// FindUserByUserName returns the account with that userName (case-insensitive at the
// target), or nil when none.
func (c *Client) FindUserByUserName(ctx context.Context, ext Extension, userName string) (*User, error) {
	return c.findUser(ctx, ext, "userName", userName)
}

func (c *Client) findUser(ctx context.Context, ext Extension, attr, value string) (*User, error) {
	q := url.Values{"filter": {eqFilter(attr, value)}, "startIndex": {"1"}, "count": {"2"}}
	var list listResponse
	if err := c.do(ctx, "GET", "/Users", q, nil, &list); err != nil {
		return nil, err
	}
	switch len(list.Resources) {
	case 0:
		return nil, nil
	case 1:
		return parseUser(ext, list.Resources[0])
	}
	return nil, fmt.Errorf("scim: %d users have %s %q", list.TotalResults, attr, value)
}

// GetUser reads one account by its SCIM id.
func (c *Client) GetUser(ctx context.Context, ext Extension, id string) (*User, error) {
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/Users/"+url.PathEscape(id), nil, nil, &raw); err != nil {
		return nil, err
	}
	return parseUser(ext, raw)
}

// ListUsers calls fn for every account in the target, page by page. It follows what the
// server answers (a server may cap count below what was asked), so no account is skipped.
func (c *Client) ListUsers(ctx context.Context, ext Extension, fn func(*User) error) error {
	const pageSize = 500
	for start := 1; ; {
		q := url.Values{"startIndex": {fmt.Sprint(start)}, "count": {fmt.Sprint(pageSize)}}
		var list listResponse
		if err := c.do(ctx, "GET", "/Users", q, nil, &list); err != nil {
			return err
		}
		for _, raw := range list.Resources {
			u, err := parseUser(ext, raw)
			if err != nil {
				return err
			}
			if err := fn(u); err != nil {
				return err
			}
		}
		start += len(list.Resources)
		if len(list.Resources) == 0 || start > list.TotalResults {
			return nil
		}
	}
}

// CreateUser creates the account in one POST with every attribute of d. When the userName
// is taken, it returns the existing account if that one already carries d.ExternalID (a
// retried create whose first answer was lost); otherwise the conflict (IsConflict).
func (c *Client) CreateUser(ctx context.Context, ext Extension, d plan.Desired) (*User, error) {
	var raw json.RawMessage
	err := c.do(ctx, "POST", "/Users", nil, userResource(ext, d), &raw)
	if IsConflict(err) && d.ExternalID != "" {
		existing, findErr := c.FindUserByExternalID(ctx, ext, d.ExternalID)
		if findErr != nil {
			return nil, findErr // not knowing whose account it is, never call it someone else's
		}
		if existing != nil {
			return existing, nil
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	u, err := parseUser(ext, raw)
	if err != nil || u.ID == "" {
		// Created or not, we cannot link it: retried, the create finds it by externalId.
		detail := "answer has no id"
		if err != nil {
			detail = "answer is not a user: " + truncate(err.Error(), maxDetail)
		}
		return nil, &Error{Op: "POST /Users", Status: 201, Malformed: true, Detail: detail}
	}
	return u, nil
}

// UpdateUser brings account id from the state from (what the target holds: our last write,
// or what was read back) to to, in one PATCH carrying only what differs. userGroup and
// deviceGroups are memberships, handled through /Groups, and are ignored here. Nothing is
// sent when no user attribute changed.
func (c *Client) UpdateUser(ctx context.Context, ext Extension, id string, from, to plan.Desired) error {
	ops := patchOps(ext, from, to)
	if len(ops) == 0 {
		return nil
	}
	return c.patch(ctx, "/Users/"+url.PathEscape(id), ops)
}

func (c *Client) patch(ctx context.Context, path string, ops []patchOp) error {
	body := map[string]any{"schemas": []string{patchOpSchema}, "Operations": ops}
	return c.do(ctx, "PATCH", path, nil, body, nil)
}
