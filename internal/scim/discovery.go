package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Discovery is what the target advertises about itself (RFC 7644 section 4): read once per
// run, so that a run never starts against a target that cannot take what it would send.
type Discovery struct {
	Patch      bool `json:"patch"`
	Filter     bool `json:"filter"`
	MaxResults int  `json:"maxResults,omitempty"`
	ETag       bool `json:"etag,omitempty"`
	// Schemas are the declared schemas' attribute names (top level), by URN.
	Schemas map[string][]string `json:"schemas"`
	// UserExtensions are the extension URNs the User resource type accepts.
	UserExtensions []string `json:"userExtensions,omitempty"`
}

// HasExtension reports whether the target declares urn as a schema and as an extension of
// User (URNs compare case-insensitively, RFC 7643 section 2.1). A target that lists no
// resource types is judged by /Schemas alone.
func (d *Discovery) HasExtension(urn string) bool {
	if d.attributes(urn) == nil {
		return false
	}
	if len(d.UserExtensions) == 0 {
		return true
	}
	for _, u := range d.UserExtensions {
		if strings.EqualFold(u, urn) {
			return true
		}
	}
	return false
}

// Declares reports whether the schema urn declares the attribute name (case-insensitive).
func (d *Discovery) Declares(urn, name string) bool {
	for _, a := range d.attributes(urn) {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

func (d *Discovery) attributes(urn string) []string {
	for k, attrs := range d.Schemas {
		if strings.EqualFold(k, urn) {
			if attrs == nil {
				return []string{}
			}
			return attrs
		}
	}
	return nil
}

// Discover reads /ServiceProviderConfig, /Schemas and /ResourceTypes.
func (c *Client) Discover(ctx context.Context) (*Discovery, error) {
	var spc struct {
		Patch  struct{ Supported bool } `json:"patch"`
		Filter struct {
			Supported  bool `json:"supported"`
			MaxResults int  `json:"maxResults"`
		} `json:"filter"`
		ETag struct{ Supported bool } `json:"etag"`
	}
	if err := c.do(ctx, "GET", "/ServiceProviderConfig", nil, nil, &spc); err != nil {
		return nil, err
	}
	d := &Discovery{Patch: spc.Patch.Supported, Filter: spc.Filter.Supported, MaxResults: spc.Filter.MaxResults,
		ETag: spc.ETag.Supported, Schemas: map[string][]string{}}

	schemas, err := c.resources(ctx, "/Schemas")
	if err != nil {
		return nil, err
	}
	for _, raw := range schemas {
		var s struct {
			ID         string `json:"id"`
			Attributes []struct {
				Name string `json:"name"`
			} `json:"attributes"`
		}
		if err := json.Unmarshal(raw, &s); err != nil || s.ID == "" {
			return nil, fmt.Errorf("scim GET /Schemas: a schema without id or unreadable: %s", truncate(c.scrub(string(raw)), maxDetail))
		}
		names := []string{}
		for _, a := range s.Attributes {
			names = append(names, a.Name)
		}
		sort.Strings(names)
		d.Schemas[s.ID] = names
	}

	types, err := c.resources(ctx, "/ResourceTypes")
	if err != nil {
		return nil, err
	}
	for _, raw := range types {
		var rt struct {
			Name       string `json:"name"`
			Endpoint   string `json:"endpoint"`
			Extensions []struct {
				Schema string `json:"schema"`
			} `json:"schemaExtensions"`
		}
		if json.Unmarshal(raw, &rt) != nil || (rt.Name != "User" && rt.Endpoint != "/Users") {
			continue
		}
		for _, e := range rt.Extensions {
			d.UserExtensions = append(d.UserExtensions, e.Schema)
		}
	}
	return d, nil
}

// Ping sends one GET /ServiceProviderConfig, without retries: nil when the target answered
// it. A *Error otherwise, or the context's error when it gave up waiting.
func (c *Client) Ping(ctx context.Context) error {
	var spc json.RawMessage
	e, err := c.attempt(ctx, "GET /ServiceProviderConfig", "GET", c.base+"/ServiceProviderConfig", nil, &spc)
	if e != nil {
		return e
	}
	return err
}

// resources reads a discovery endpoint that answers a ListResponse (RFC 7644 section 4) or,
// as some servers do, a bare JSON array. A target that does not serve it (404, 501) advertises
// nothing there: an empty list.
func (c *Client) resources(ctx context.Context, path string) ([]json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, "GET", path, nil, nil, &raw); err != nil {
		var e *Error
		if errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Status == http.StatusNotImplemented) {
			return nil, nil
		}
		return nil, err
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		return arr, nil
	}
	var list listResponse
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("scim GET %s: not a list: %s", path, truncate(c.scrub(string(raw)), maxDetail))
	}
	return list.Resources, nil
}

// Check says why the target cannot take what an organization writes: no PATCH or filtering,
// or the custom
// extension or one of the attributes it would write (custom fields, and the settings template
// when rules set one) not declared. Enterprise attributes are checked when the target
// declares the enterprise schema at all (a target without it drops them, as RFC 7643 allows).
func (d *Discovery) Check(ext Extension, custom []string, template bool, enterprise []string) error {
	ext = ext.Resolved()
	if !d.Patch {
		return fmt.Errorf("the target does not support PATCH (ServiceProviderConfig patch.supported is false); usersync sends only what changed, with PATCH")
	}
	if !d.Filter {
		return fmt.Errorf("the target does not support filtering (ServiceProviderConfig filter.supported is false); usersync finds accounts by externalId and userName with filters")
	}
	names := append([]string(nil), custom...)
	if template {
		names = append(names, ext.TemplateAttribute)
	}
	if len(names) > 0 && !d.HasExtension(ext.URN) {
		return fmt.Errorf("the target does not declare the custom extension %s (for %s); set the URN it uses with: starter target set --custom-schema <urn>",
			ext.URN, strings.Join(names, ", "))
	}
	for _, n := range names {
		if !d.Declares(ext.URN, n) {
			return fmt.Errorf("the target's schema %s does not declare the attribute %q", ext.URN, n)
		}
	}
	if d.attributes(EnterpriseSchema) != nil {
		for _, n := range enterprise {
			if !d.Declares(EnterpriseSchema, n) {
				return fmt.Errorf("the target's schema %s does not declare the attribute %q", EnterpriseSchema, n)
			}
		}
	}
	return nil
}
