package scim_test

// The conformance suite: one table of cases, run against our strict sandbox and against
// SCIMMY, a SCIM server we did not write. Every case reads the target's state back over
// SCIM (GetUser, ListUsers, Find*, or a raw GET), never trusting what a write returned.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
)

// acmeURN is a custom extension URN other than the client's default, declared the same way
// by both targets, so the suite proves the extension is configurable.
const acmeURN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"

var acmeAttrs = []string{"settingsTemplate", "accessTier", "office", "costCode"}

// targetConfig is the server a case needs. The zero value declares acmeURN with acmeAttrs.
type targetConfig struct {
	CustomSchema     string // "": acmeURN; "none": no custom extension
	CustomAttributes []string
	MaxResults       int // filter.maxResults and page cap, where the target can be configured
}

func (cfg targetConfig) resolved() targetConfig {
	if cfg.CustomSchema == "" {
		cfg.CustomSchema = acmeURN
	}
	if cfg.CustomAttributes == nil {
		cfg.CustomAttributes = acmeAttrs
	}
	return cfg
}

// conn is a client connected to a fresh, empty target.
type conn struct {
	target string
	client *scim.Client
	// ext is the extension the target declares (the zero value for the client's default).
	ext scim.Extension
	// rec records what the client sent (raw GETs through direct are recorded for the
	// sandbox too: take() before the calls of interest).
	rec *recorder
	// direct is the target's SCIM base URL, for raw reads.
	direct string
	// base is the client's base URL.
	base string
	// maxResults is the filter.maxResults the target advertises.
	maxResults int
	// pageCap is the largest page the target returns.
	pageCap int
	// userGroups: the target returns a user's read-only groups.
	userGroups bool
	// duplicateMembers: adding a member already present stores it twice (RFC 7644 section
	// 3.5.2.1 says such an add SHOULD change nothing).
	duplicateMembers bool
	// filterEscapes: the target decodes JSON escapes (\" and \\) in filter values, as
	// RFC 7644 section 3.4.2.2 (compValue is a JSON string) requires.
	filterEscapes bool
}

type target struct {
	name  string
	start func(t *testing.T, cfg targetConfig) *conn
}

func targets() []target {
	return []target{
		{name: "sandbox", start: startSandbox},
		{name: "scimmy", start: startSCIMMY},
	}
}

// sandboxMaxPage is the sandbox's fixed page cap (and its filter.maxResults); it has no
// option to lower it.
const sandboxMaxPage = 1000

func startSandbox(t *testing.T, cfg targetConfig) *conn {
	t.Helper()
	cfg = cfg.resolved()
	if cfg.MaxResults != 0 {
		t.Logf("the sandbox has no page-cap option: it advertises and caps at %d, not %d", sandboxMaxPage, cfg.MaxResults)
	}
	e := newEnv(t, scimsandbox.Options{CustomSchema: cfg.CustomSchema, CustomAttributes: cfg.CustomAttributes}, scim.Config{})
	return &conn{target: "sandbox", client: e.client, ext: extensionFor(cfg), rec: e.rec, direct: e.url, base: e.url,
		maxResults: sandboxMaxPage, pageCap: sandboxMaxPage, filterEscapes: true}
}

func startSCIMMY(t *testing.T, cfg targetConfig) *conn {
	t.Helper()
	cfg = cfg.resolved()
	if cfg.CustomSchema == scim.DefaultCustomSchema {
		// SCIMMY's SchemaDefinition throws "Invalid SCIM schema URN namespace" for any URN
		// outside urn:ietf:params:scim:schemas:.
		t.Skipf("SCIMMY cannot declare %s: it only accepts urn:ietf:params:scim:schemas: URNs", cfg.CustomSchema)
	}
	base := devstacktest.SCIMMY(t, devstack.SCIMMY{Token: token, CustomSchema: cfg.CustomSchema,
		CustomAttributes: cfg.CustomAttributes, MaxResults: cfg.MaxResults})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	// A recording proxy in front of SCIMMY shows what the client sent.
	rec := &recorder{next: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})}
	proxy := httptest.NewServer(rec)
	t.Cleanup(proxy.Close)
	client := scim.New(scim.Config{BaseURL: proxy.URL + u.Path, Token: token, RetryBackoff: time.Millisecond})
	maxResults := cfg.MaxResults
	if maxResults == 0 {
		maxResults = 200
	}
	return &conn{target: "scimmy", client: client, ext: extensionFor(cfg), rec: rec, direct: base, base: proxy.URL + u.Path,
		maxResults: maxResults, pageCap: maxResults, userGroups: true, duplicateMembers: true,
		// SCIMMY 1.3's filter tokenizer ends a string at the first '"', escaped or not, and
		// keeps a backslash escape as written: "a \" b" is a syntax error (400
		// invalidFilter) and "a \\ b" matches nothing.
		filterEscapes: false}
}

func extensionFor(cfg targetConfig) scim.Extension {
	if strings.EqualFold(cfg.CustomSchema, scim.DefaultCustomSchema) {
		return scim.Extension{} // the zero value means the default
	}
	if strings.EqualFold(cfg.CustomSchema, "none") {
		return scim.Extension{URN: acmeURN} // what an organization configured; the target lacks it
	}
	return scim.Extension{URN: cfg.CustomSchema, TemplateAttribute: "settingsTemplate"}
}

// urn is the resolved custom extension URN of the conn's extension.
func (c *conn) urn() string { return c.ext.Resolved().URN }

// get reads path over SCIM without the client under test, and wants 200.
func (c *conn) get(t *testing.T, path string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", c.direct+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return out
}

// list is a raw GET /Users or /Groups with a filter.
func (c *conn) list(t *testing.T, endpoint, filter string) []map[string]any {
	t.Helper()
	res := c.get(t, endpoint+"?filter="+url.QueryEscape(filter))
	return objectsOf(res["Resources"])
}

// readBack reads user id with a fresh GET and wants it to hold want (group memberships
// aside, which are not user attributes).
func (c *conn) readBack(t *testing.T, id string, want plan.Desired) *scim.User {
	t.Helper()
	u, err := c.client.GetUser(t.Context(), c.ext, id)
	if err != nil {
		t.Fatalf("GetUser %s: %v", id, err)
	}
	if u.ID != id {
		t.Fatalf("GetUser %s returned id %q", id, u.ID)
	}
	if got, w := norm(u.State()), norm(want); !reflect.DeepEqual(got, w) {
		t.Fatalf("read back from %s:\n got %+v\nwant %+v", c.target, got, w)
	}
	// name.formatted follows the name parts (the typed view does not show it).
	raw := c.get(t, "/Users/"+url.PathEscape(id))
	if got, w := strAt(raw, "name", "formatted"), strings.TrimSpace(want.GivenName+" "+want.FamilyName); got != w {
		t.Fatalf("name.formatted = %q, want %q (raw %v)", got, w, raw["name"])
	}
	return u
}

// patches returns the Operations of each PATCH recorded since the last take, and fails on
// any other write.
func (c *conn) patches(t *testing.T) [][]map[string]any {
	t.Helper()
	var out [][]map[string]any
	for _, s := range c.rec.take() {
		switch s.Method {
		case "GET":
		case "PATCH":
			out = append(out, patchOps(t, s))
		default:
			t.Fatalf("unexpected %s %s", s.Method, s.Path)
		}
	}
	return out
}

// norm is d as a target can hold it: no group memberships, sets sorted, empty values and
// collections absent.
func norm(d plan.Desired) plan.Desired {
	d.UserGroup, d.DeviceGroups = "", nil
	d.Products = slices.Sorted(slices.Values(d.Products))
	if len(d.Products) == 0 {
		d.Products = nil
	}
	clean := func(m map[string]string) map[string]string {
		var out map[string]string
		for k, v := range m {
			if v != "" {
				if out == nil {
					out = map[string]string{}
				}
				out[k] = v
			}
		}
		return out
	}
	d.Enterprise, d.Custom = clean(d.Enterprise), clean(d.Custom)
	return d
}

func strAt(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		o, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = o[k]
	}
	s, _ := v.(string)
	return s
}

func objectsOf(v any) []map[string]any {
	list, _ := v.([]any)
	var out []map[string]any
	for _, e := range list {
		if o, ok := e.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

// valuesOf returns the "value" of each element of a multi-valued attribute, sorted.
func valuesOf(v any) []string {
	var out []string
	for _, o := range objectsOf(v) {
		out = append(out, strAt(o, "value"))
	}
	slices.Sort(out)
	return out
}

// heldBy reports whether d holds the attribute at an RFC 7644 path the client writes.
func heldBy(d plan.Desired, ext scim.Extension, path string) bool {
	ext = ext.Resolved()
	switch path {
	case "externalId":
		return d.ExternalID != ""
	case "userName":
		return d.UserName != ""
	case "emails":
		return d.Email != ""
	case "name.givenName":
		return d.GivenName != ""
	case "name.familyName":
		return d.FamilyName != ""
	case "name.formatted":
		return strings.TrimSpace(d.GivenName+" "+d.FamilyName) != ""
	case "displayName":
		return d.DisplayName != ""
	case "roles":
		return d.Role != ""
	case "entitlements":
		return len(d.Products) > 0
	}
	if k, ok := strings.CutPrefix(path, scim.EnterpriseSchema+":"); ok {
		return d.Enterprise[k] != ""
	}
	if k, ok := strings.CutPrefix(path, ext.URN+":"); ok {
		if k == ext.TemplateAttribute {
			return d.SettingsTemplate != ""
		}
		return d.Custom[k] != ""
	}
	return false
}

// checkOps fails unless every operation has an attribute path (extension attributes
// URN-qualified, never a bare schema URN) and removes only what from holds.
func checkOps(t *testing.T, ext scim.Extension, from plan.Desired, ops []map[string]any) {
	t.Helper()
	urns := []string{scim.EnterpriseSchema, ext.Resolved().URN, "urn:ietf:params:scim:schemas:core:2.0:User"}
	for _, op := range ops {
		path, _ := op["path"].(string)
		if path == "" {
			t.Fatalf("operation without a path: %v", op)
		}
		if strings.HasPrefix(strings.ToLower(path), "urn:") {
			qualified := false
			for _, u := range urns {
				if strings.EqualFold(path, u) {
					t.Fatalf("bare schema URN as a PATCH path: %v", op)
				}
				if attr, ok := strings.CutPrefix(path, u+":"); ok && scim.ValidAttributeName(attr) {
					qualified = true
				}
			}
			if !qualified {
				t.Fatalf("PATCH path %q is not URN:attribute of a known schema", path)
			}
		}
		if op["op"] == "remove" && !heldBy(from, ext, path) {
			t.Fatalf("remove of %q, which the account does not hold", path)
		}
		if op["op"] == "remove" && op["value"] != nil {
			t.Fatalf("remove with a value: %v", op)
		}
	}
}

// fullUser has every attribute kind the client writes set.
func fullUser(name string) plan.Desired {
	return plan.Desired{
		ExternalID: "ad-guid-" + name, UserName: name + "@example.com", Email: name + "@example.com",
		GivenName: "Ann", FamilyName: "Lee", DisplayName: "Ann Lee", Active: true, Role: "Member",
		Products: []string{"Webinar", "Meeting"}, SettingsTemplate: "T3",
		UserGroup: "Sales", DeviceGroups: []string{"DG-A"},
		Enterprise: map[string]string{"department": "Sales", "employeeNumber": "1001", "costCenter": "CC-7"},
		Custom:     map[string]string{"accessTier": "gold", "office": "Oslo", "costCode": "X-1"},
	}
}

func clone(d plan.Desired) plan.Desired {
	d.Products = slices.Clone(d.Products)
	d.DeviceGroups = slices.Clone(d.DeviceGroups)
	d.Enterprise = maps.Clone(d.Enterprise)
	d.Custom = maps.Clone(d.Custom)
	return d
}

type confCase struct {
	name string
	cfg  targetConfig
	run  func(t *testing.T, c *conn)
}

var conformanceCases = []confCase{
	{name: "create/every attribute kind", run: confCreate},
	{name: "update/each attribute kind", run: confUpdate},
	{name: "extension/not declared", cfg: targetConfig{CustomSchema: "none"}, run: confNoExtension},
	{name: "discover", run: confDiscover},
	{name: "suspend and reactivate", run: confSuspend},
	{name: "groups", run: confGroups},
	{name: "create conflict", run: confConflict},
	{name: "paging/server caps count", cfg: targetConfig{MaxResults: 2}, run: confPaging},
	{name: "find/quotes in values", run: confQuotes},
	{name: "extension/template attribute renamed", run: confTemplateRenamed},
	{name: "auth/wrong token", run: confWrongToken},
	{name: "extension/default", cfg: targetConfig{CustomSchema: scim.DefaultCustomSchema}, run: confDefaultExtension},
}

func TestConformance(t *testing.T) {
	for _, target := range targets() {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range conformanceCases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, target.start(t, tc.cfg))
				})
			}
		})
	}
}

func confCreate(t *testing.T, c *conn) {
	ctx := t.Context()
	d := fullUser("ann")
	created, err := c.client.CreateUser(ctx, c.ext, d)
	if err != nil {
		t.Fatal(err)
	}
	c.readBack(t, created.ID, d)

	// The raw representation: each kind where RFC 7643 puts it.
	raw := c.get(t, "/Users/"+url.PathEscape(created.ID))
	for path, want := range map[string]string{
		"userName": "ann@example.com", "externalId": "ad-guid-ann", "displayName": "Ann Lee",
		"name.givenName": "Ann", "name.familyName": "Lee", "name.formatted": "Ann Lee",
	} {
		if got := strAt(raw, strings.Split(path, ".")...); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if raw["active"] != true {
		t.Errorf("active = %v, want true", raw["active"])
	}
	emails := objectsOf(raw["emails"])
	if len(emails) != 1 || emails[0]["value"] != "ann@example.com" || emails[0]["primary"] != true || emails[0]["type"] != "work" {
		t.Errorf("emails = %v, want one primary work email", raw["emails"])
	}
	if got := valuesOf(raw["entitlements"]); !slices.Equal(got, []string{"Meeting", "Webinar"}) {
		t.Errorf("entitlements = %v", raw["entitlements"])
	}
	if got := valuesOf(raw["roles"]); !slices.Equal(got, []string{"Member"}) {
		t.Errorf("roles = %v", raw["roles"])
	}
	for _, attr := range []string{"groups", "userGroup", "deviceGroups"} {
		if _, ok := raw[attr]; ok {
			t.Errorf("%s present on a user in no group: %v", attr, raw[attr])
		}
	}
	ent, _ := raw[scim.EnterpriseSchema].(map[string]any)
	if !reflect.DeepEqual(ent, map[string]any{"department": "Sales", "employeeNumber": "1001", "costCenter": "CC-7"}) {
		t.Errorf("enterprise extension = %v", raw[scim.EnterpriseSchema])
	}
	custom, _ := raw[c.urn()].(map[string]any)
	if !reflect.DeepEqual(custom, map[string]any{"settingsTemplate": "T3", "accessTier": "gold", "office": "Oslo", "costCode": "X-1"}) {
		t.Errorf("custom extension %s = %v", c.urn(), raw[c.urn()])
	}
	schemas := fmt.Sprint(raw["schemas"])
	for _, urn := range []string{"urn:ietf:params:scim:schemas:core:2.0:User", scim.EnterpriseSchema, c.urn()} {
		if !strings.Contains(schemas, urn) {
			t.Errorf("schemas %s lacks %s", schemas, urn)
		}
	}

	// And it is found by both keys.
	if u, err := c.client.FindUserByExternalID(ctx, c.ext, d.ExternalID); err != nil || u == nil || u.ID != created.ID {
		t.Fatalf("FindUserByExternalID = %+v, %v", u, err)
	}
	if u, err := c.client.FindUserByUserName(ctx, c.ext, d.UserName); err != nil || u == nil || u.ID != created.ID {
		t.Fatalf("FindUserByUserName = %+v, %v", u, err)
	}
}

func confUpdate(t *testing.T, c *conn) {
	ctx := t.Context()
	state := fullUser("upd")
	u, err := c.client.CreateUser(ctx, c.ext, state)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func(d *plan.Desired)
	}{
		// change
		{"change userName", func(d *plan.Desired) { d.UserName = "ann.lee@example.com" }},
		{"change email", func(d *plan.Desired) { d.Email = "ann.lee@example.com" }},
		{"change givenName", func(d *plan.Desired) { d.GivenName = "Anna" }},
		{"change familyName", func(d *plan.Desired) { d.FamilyName = "Leigh" }},
		{"change displayName", func(d *plan.Desired) { d.DisplayName = "Anna Leigh" }},
		{"change role", func(d *plan.Desired) { d.Role = "Admin" }},
		{"change entitlements", func(d *plan.Desired) { d.Products = []string{"Phone", "Meeting"} }},
		{"change active", func(d *plan.Desired) { d.Active = false }},
		{"change active back", func(d *plan.Desired) { d.Active = true }},
		{"change one enterprise attribute", func(d *plan.Desired) { d.Enterprise["department"] = "R&D" }},
		{"change one custom attribute", func(d *plan.Desired) { d.Custom["office"] = "Bergen" }},
		{"change settings template", func(d *plan.Desired) { d.SettingsTemplate = "T4" }},
		{"change several kinds at once", func(d *plan.Desired) {
			d.UserName, d.Role, d.Enterprise["costCenter"], d.Custom["costCode"] = "anna@example.com", "Owner", "CC-8", "X-2"
		}},
		// clear
		{"remove displayName", func(d *plan.Desired) { d.DisplayName = "" }},
		{"remove givenName", func(d *plan.Desired) { d.GivenName = "" }},
		{"remove familyName (no name left)", func(d *plan.Desired) { d.FamilyName = "" }},
		{"remove email", func(d *plan.Desired) { d.Email = "" }},
		{"remove role", func(d *plan.Desired) { d.Role = "" }},
		{"remove entitlements", func(d *plan.Desired) { d.Products = nil }},
		{"remove one enterprise attribute", func(d *plan.Desired) { delete(d.Enterprise, "employeeNumber") }},
		{"remove one custom attribute", func(d *plan.Desired) { delete(d.Custom, "accessTier") }},
		{"remove settings template", func(d *plan.Desired) { d.SettingsTemplate = "" }},
		{"remove every custom attribute", func(d *plan.Desired) { d.Custom = nil }},
		{"remove every enterprise attribute", func(d *plan.Desired) { d.Enterprise = map[string]string{} }},
		// add
		{"add displayName", func(d *plan.Desired) { d.DisplayName = "A. Leigh" }},
		{"add givenName", func(d *plan.Desired) { d.GivenName = "Ann" }},
		{"add familyName", func(d *plan.Desired) { d.FamilyName = "Lee" }},
		{"add email", func(d *plan.Desired) { d.Email = "ann@example.com" }},
		{"add role", func(d *plan.Desired) { d.Role = "Member" }},
		{"add entitlements", func(d *plan.Desired) { d.Products = []string{"Webinar"} }},
		{"add enterprise attribute", func(d *plan.Desired) { d.Enterprise = map[string]string{"division": "North"} }},
		{"add custom attribute", func(d *plan.Desired) { d.Custom = map[string]string{"accessTier": "bronze"} }},
		{"add settings template", func(d *plan.Desired) { d.SettingsTemplate = "T1" }},
		{"add a second custom attribute", func(d *plan.Desired) { d.Custom["office"] = "Tromsø" }},
	}
	c.rec.take()
	for _, step := range steps {
		from := clone(state)
		to := clone(state)
		step.change(&to)
		if err := c.client.UpdateUser(ctx, c.ext, u.ID, from, to); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		patches := c.patches(t)
		if len(patches) != 1 {
			t.Fatalf("%s: %d PATCH requests, want 1", step.name, len(patches))
		}
		t.Logf("%s: %v", step.name, opSummary(patches[0]))
		checkOps(t, c.ext, from, patches[0])
		c.readBack(t, u.ID, to)
		state = to
	}
	// Nothing changed: nothing is sent.
	c.rec.take()
	if err := c.client.UpdateUser(ctx, c.ext, u.ID, state, clone(state)); err != nil {
		t.Fatal(err)
	}
	if reqs := c.rec.take(); len(reqs) != 0 {
		t.Fatalf("an update without changes sent %d requests", len(reqs))
	}
	got := c.readBack(t, u.ID, state)
	if got.ID != u.ID {
		t.Fatalf("id changed: %s -> %s", u.ID, got.ID)
	}
}

func confNoExtension(t *testing.T, c *conn) {
	d, err := c.client.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.HasExtension(acmeURN) {
		t.Fatalf("target without a custom extension declares %s: %+v", acmeURN, d)
	}
	for _, check := range []struct {
		custom   []string
		template bool
	}{{[]string{"office"}, false}, {nil, true}, {[]string{"office", "costCode"}, true}} {
		err := d.Check(c.ext, check.custom, check.template, nil)
		if err == nil || !strings.Contains(err.Error(), acmeURN) {
			t.Errorf("Check(custom %v, template %v) = %v; want a refusal naming %s", check.custom, check.template, err, acmeURN)
		}
	}
	if err := d.Check(c.ext, nil, false, []string{"department", "employeeNumber"}); err != nil {
		t.Errorf("Check without custom fields = %v; want nil", err)
	}
	if err := d.Check(scim.Extension{}, nil, false, nil); err != nil {
		t.Errorf("Check without anything custom (default extension) = %v; want nil", err)
	}
	// Such a target still takes an account without custom data.
	plain := fullUser("plain")
	plain.Custom, plain.SettingsTemplate = nil, ""
	u, err := c.client.CreateUser(t.Context(), c.ext, plain)
	if err != nil {
		t.Fatal(err)
	}
	c.readBack(t, u.ID, plain)
}

func confDiscover(t *testing.T, c *conn) {
	d, err := c.client.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Patch || !d.Filter {
		t.Errorf("patch %v filter %v, want both supported", d.Patch, d.Filter)
	}
	if d.MaxResults != c.maxResults {
		t.Errorf("MaxResults = %d, want %d", d.MaxResults, c.maxResults)
	}
	if !d.HasExtension(c.urn()) || !slices.ContainsFunc(d.UserExtensions, func(u string) bool { return strings.EqualFold(u, c.urn()) }) {
		t.Errorf("%s not declared as a User extension: schemas %v, user extensions %v", c.urn(), slices.Collect(maps.Keys(d.Schemas)), d.UserExtensions)
	}
	for _, a := range acmeAttrs {
		if !d.Declares(c.urn(), a) {
			t.Errorf("%s does not declare %s: %v", c.urn(), a, d.Schemas[c.urn()])
		}
	}
	for _, a := range []string{"department", "employeeNumber", "costCenter", "division", "organization"} {
		if !d.Declares(scim.EnterpriseSchema, a) {
			t.Errorf("enterprise schema does not declare %s", a)
		}
	}
	if err := d.Check(c.ext, []string{"accessTier", "office", "costCode"}, true, []string{"department", "costCenter"}); err != nil {
		t.Errorf("Check = %v; want nil", err)
	}
	if err := d.Check(c.ext, []string{"office", "badge"}, false, nil); err == nil || !strings.Contains(err.Error(), `"badge"`) {
		t.Errorf("Check with an undeclared custom attribute = %v; want an error naming badge", err)
	}
	if err := d.Check(c.ext, nil, false, []string{"shoeSize"}); err == nil || !strings.Contains(err.Error(), `"shoeSize"`) {
		t.Errorf("Check with an undeclared enterprise attribute = %v; want an error naming shoeSize", err)
	}
	// The default extension is not what this target declares.
	if err := d.Check(scim.Extension{}, []string{"office"}, false, nil); err == nil || !strings.Contains(err.Error(), scim.DefaultCustomSchema) {
		t.Errorf("Check with the default extension = %v; want a refusal naming %s", err, scim.DefaultCustomSchema)
	}
}

func confSuspend(t *testing.T, c *conn) {
	ctx := t.Context()
	d := fullUser("sus")
	u, err := c.client.CreateUser(ctx, c.ext, d)
	if err != nil {
		t.Fatal(err)
	}
	suspended := plan.SuspendItem(plan.Applied{ExternalID: d.ExternalID, ScimID: u.ID, State: clone(d)}, nil).Desired
	c.rec.take()
	if err := c.client.UpdateUser(ctx, c.ext, u.ID, d, suspended); err != nil {
		t.Fatal(err)
	}
	for _, ops := range c.patches(t) {
		checkOps(t, c.ext, d, ops)
	}
	got := c.readBack(t, u.ID, suspended)
	if got.Active || len(got.Products) > 0 || len(got.Roles) > 0 {
		t.Fatalf("suspended account: %+v", got)
	}
	raw := c.get(t, "/Users/"+url.PathEscape(u.ID))
	if raw["active"] != false || raw["entitlements"] != nil || raw["roles"] != nil {
		t.Fatalf("suspended account: active %v entitlements %v roles %v", raw["active"], raw["entitlements"], raw["roles"])
	}
	// Still found by its directory id: the same account comes back.
	found, err := c.client.FindUserByExternalID(ctx, c.ext, d.ExternalID)
	if err != nil || found == nil || found.ID != u.ID {
		t.Fatalf("FindUserByExternalID after suspension = %+v, %v", found, err)
	}

	if err := c.client.UpdateUser(ctx, c.ext, u.ID, suspended, d); err != nil {
		t.Fatal(err)
	}
	for _, ops := range c.patches(t) {
		checkOps(t, c.ext, suspended, ops)
	}
	c.readBack(t, u.ID, d)
	all := c.get(t, "/Users")
	if all["totalResults"] != float64(1) {
		t.Fatalf("%v accounts after suspend and reactivate, want the one", all["totalResults"])
	}
}

func confGroups(t *testing.T, c *conn) {
	ctx := t.Context()
	var ids []string
	for _, name := range []string{"ga", "gb", "gc"} {
		u, err := c.client.CreateUser(ctx, c.ext, plan.Desired{ExternalID: "ad-" + name, UserName: name + "@example.com", Active: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	// No quote in the name: SCIMMY cannot filter on one (see confQuotes).
	const name = `Sales & EMEA/Nordics`
	if g, err := c.client.FindGroup(ctx, name); err != nil || g != nil {
		t.Fatalf("FindGroup before create = %+v, %v", g, err)
	}
	g, err := c.client.CreateGroup(ctx, name)
	if err != nil || g.ID == "" {
		t.Fatalf("CreateGroup = %+v, %v", g, err)
	}
	if _, err := c.client.CreateGroup(ctx, "Other"); err != nil {
		t.Fatal(err)
	}
	found, err := c.client.FindGroup(ctx, name)
	if err != nil || found == nil || found.ID != g.ID || found.DisplayName != name {
		t.Fatalf("FindGroup = %+v, %v; want %s", found, err, g.ID)
	}
	c.rec.take()
	again, err := c.client.CreateGroup(ctx, name)
	if err != nil || again.ID != g.ID {
		t.Fatalf("CreateGroup of a taken name = %+v, %v; want the existing group %s", again, err, g.ID)
	}
	if reqs := c.rec.take(); len(reqs) < 2 || reqs[0].Method != "POST" {
		t.Fatalf("second CreateGroup sent %d requests; want a POST (409) then a lookup", len(reqs))
	}
	if same := c.list(t, "/Groups", `displayName eq "`+name+`"`); len(same) != 1 || same[0]["id"] != g.ID {
		t.Fatalf("groups named %s: %v; want only %s", name, same, g.ID)
	}

	members := func(want ...string) {
		t.Helper()
		raw := c.get(t, "/Groups/"+url.PathEscape(g.ID))
		slices.Sort(want)
		got := valuesOf(raw["members"])
		if distinct := slices.Compact(slices.Clone(got)); len(distinct) != len(got) && !c.duplicateMembers {
			t.Fatalf("members read back = %v: duplicates", got)
		} else if len(distinct) != len(got) {
			t.Logf("%s holds a re-added member twice: %v", c.target, got)
			got = distinct
		}
		if !slices.Equal(got, want) {
			t.Fatalf("members read back = %v, want %v", got, want)
		}
		if raw["displayName"] != name {
			t.Fatalf("displayName = %v", raw["displayName"])
		}
	}
	members()
	if err := c.client.PatchGroupMembers(ctx, g.ID, ids, nil); err != nil {
		t.Fatal(err)
	}
	members(ids...)
	// Re-adding a member is harmless.
	if err := c.client.PatchGroupMembers(ctx, g.ID, ids[:1], nil); err != nil {
		t.Fatal(err)
	}
	members(ids...)
	if err := c.client.PatchGroupMembers(ctx, g.ID, nil, ids[1:]); err != nil {
		t.Fatal(err)
	}
	members(ids[0])
	if err := c.client.PatchGroupMembers(ctx, g.ID, []string{ids[2]}, []string{ids[0]}); err != nil {
		t.Fatal(err)
	}
	members(ids[2])
	// The user's read-only groups (RFC 7643 section 4.1.2) are optional: SCIMMY fills
	// them in, the sandbox does not.
	switch got := valuesOf(c.get(t, "/Users/"+url.PathEscape(ids[2]))["groups"]); {
	case slices.Equal(got, []string{g.ID}):
	case got == nil && !c.userGroups:
		t.Logf("%s does not return a user's groups", c.target)
	default:
		t.Errorf("groups of the member = %v, want [%s]", got, g.ID)
	}
	if err := c.client.PatchGroupMembers(ctx, g.ID, nil, ids[2:]); err != nil {
		t.Fatal(err)
	}
	members()
}

func confConflict(t *testing.T, c *conn) {
	ctx := t.Context()
	d := fullUser("dup")
	first, err := c.client.CreateUser(ctx, c.ext, d)
	if err != nil {
		t.Fatal(err)
	}
	// Another directory user with the same userName (any case): a conflict, nothing written.
	for _, userName := range []string{d.UserName, strings.ToUpper(d.UserName)} {
		other := fullUser("other")
		other.UserName = userName
		u, err := c.client.CreateUser(ctx, c.ext, other)
		if !scim.IsConflict(err) || scim.IsRejected(err) || scim.IsRetryable(err) || scim.IsAuth(err) || u != nil {
			t.Fatalf("create of taken userName %q = %+v, %v; want only IsConflict", userName, u, err)
		}
		if u, err := c.client.FindUserByExternalID(ctx, c.ext, other.ExternalID); err != nil || u != nil {
			t.Fatalf("the conflicting create left %+v, %v", u, err)
		}
	}
	// The same directory user again (a create whose answer was lost): the existing account.
	again, err := c.client.CreateUser(ctx, c.ext, d)
	if err != nil || again == nil || again.ID != first.ID {
		t.Fatalf("retried create = %+v, %v; want account %s", again, err, first.ID)
	}
	all := c.get(t, "/Users")
	if all["totalResults"] != float64(1) {
		t.Fatalf("%v accounts, want 1: %v", all["totalResults"], all["Resources"])
	}
	c.readBack(t, first.ID, d)
}

func confPaging(t *testing.T, c *conn) {
	ctx := t.Context()
	const clientPage = 500 // what ListUsers asks for
	n := 7
	if c.pageCap >= clientPage {
		// The sandbox caps pages at 1000, above what the client asks: the cap never shows.
		// Enough users for several client-sized pages still proves the paging.
		n = 2*clientPage + 1
		t.Logf("%s caps pages at %d, above the client's %d: paging %d users at the client's size", c.target, c.pageCap, clientPage, n)
	}
	want := map[string]bool{}
	for i := range n {
		u, err := c.client.CreateUser(ctx, c.ext, plan.Desired{ExternalID: fmt.Sprintf("ad-%04d", i),
			UserName: fmt.Sprintf("user%04d@example.com", i), Active: true})
		if err != nil {
			t.Fatal(err)
		}
		want[u.ID] = true
	}
	c.rec.take()
	seen := map[string]int{}
	if err := c.client.ListUsers(ctx, c.ext, func(u *scim.User) error {
		seen[u.ID]++
		if !want[u.ID] {
			t.Errorf("ListUsers returned an unknown account %+v", u)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("account %s seen %d times, want once", id, seen[id])
		}
	}
	page := min(c.pageCap, clientPage)
	pages := 0
	for _, r := range c.rec.take() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/Users") {
			pages++
		}
	}
	if wantPages := (n + page - 1) / page; pages != wantPages {
		t.Errorf("%d list requests for %d users in pages of %d, want %d", pages, n, page, wantPages)
	}
	if raw := c.get(t, "/Users?startIndex=1&count=1000"); raw["totalResults"] != float64(n) ||
		len(objectsOf(raw["Resources"])) != min(n, c.pageCap) {
		t.Errorf("raw list: totalResults %v, %d resources", raw["totalResults"], len(objectsOf(raw["Resources"])))
	}
}

func confQuotes(t *testing.T, c *conn) {
	ctx := t.Context()
	// escaped: the filter literal needs a JSON escape (a quote or a backslash).
	users := []struct {
		d       plan.Desired
		escaped bool
	}{
		{plan.Desired{ExternalID: `ad "quoted"`, UserName: `o"brien@example.com`, Active: true}, true},
		{plan.Desired{ExternalID: `ad \ back`, UserName: `back\slash@example.com`, Active: true}, true},
		{plan.Desired{ExternalID: `ad o'brien & co+1%41 ø`, UserName: `o'brien+tag&x=1%20ø@example.com`, Active: true}, false},
	}
	ids := map[string]bool{}
	for _, u := range users {
		created, err := c.client.CreateUser(ctx, c.ext, u.d)
		if err != nil {
			t.Fatal(err)
		}
		ids[created.ID] = true
		c.readBack(t, created.ID, u.d)
		for _, find := range []struct {
			name  string
			value string
			fn    func(context.Context, scim.Extension, string) (*scim.User, error)
		}{
			{"FindUserByExternalID", u.d.ExternalID, c.client.FindUserByExternalID},
			{"FindUserByUserName", u.d.UserName, c.client.FindUserByUserName},
		} {
			got, err := find.fn(ctx, c.ext, find.value)
			switch {
			case err == nil && got != nil && got.ID == created.ID && got.ExternalID == u.d.ExternalID && got.UserName == u.d.UserName:
			case u.escaped && !c.filterEscapes && (got == nil && (err == nil || scim.IsRejected(err))):
				// Never a wrong account: not found, or the filter refused.
				t.Logf("%s(%q) on %s, which cannot filter on it: %+v, %v", find.name, find.value, c.target, got, err)
			default:
				t.Fatalf("%s(%q) = %+v, %v; want %s", find.name, find.value, got, err, created.ID)
			}
		}
	}
	// A decoy that a cut-short filter value would match.
	decoy, err := c.client.CreateUser(ctx, c.ext, plan.Desired{ExternalID: `ad `, UserName: `o@example.com`, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := c.client.FindUserByExternalID(ctx, c.ext, `ad `); err != nil || u == nil || u.ID != decoy.ID {
		t.Fatalf("FindUserByExternalID(decoy) = %+v, %v; want %s", u, err, decoy.ID)
	}
	// Unescaped, these values would make a filter matching every account.
	for _, v := range []string{`x" or userName pr or externalId eq "`, `x" or id pr or "a" eq "a`} {
		u, err := c.client.FindUserByExternalID(ctx, c.ext, v)
		if u != nil {
			t.Fatalf("FindUserByExternalID(%q) matched %+v", v, u)
		}
		if err != nil && (c.filterEscapes || !scim.IsRejected(err)) {
			t.Fatalf("FindUserByExternalID(%q): %v", v, err)
		}
	}
}

func confTemplateRenamed(t *testing.T, c *conn) {
	ctx := t.Context()
	ext := scim.Extension{URN: c.urn(), TemplateAttribute: "accessTier"}
	d := plan.Desired{ExternalID: "ad-tpl", UserName: "tpl@example.com", Active: true, SettingsTemplate: "T9",
		Custom: map[string]string{"office": "Oslo"}}
	u, err := c.client.CreateUser(ctx, ext, d)
	if err != nil {
		t.Fatal(err)
	}
	raw := c.get(t, "/Users/"+url.PathEscape(u.ID))
	if custom, _ := raw[c.urn()].(map[string]any); !reflect.DeepEqual(custom, map[string]any{"accessTier": "T9", "office": "Oslo"}) {
		t.Fatalf("custom extension = %v; want the template in accessTier", raw[c.urn()])
	}
	to := clone(d)
	to.SettingsTemplate = "T10"
	c.rec.take()
	if err := c.client.UpdateUser(ctx, ext, u.ID, d, to); err != nil {
		t.Fatal(err)
	}
	patches := c.patches(t)
	if len(patches) != 1 || !slices.Equal(opSummary(patches[0]), []string{"replace " + c.urn() + ":accessTier"}) {
		t.Fatalf("PATCHes = %v", patches)
	}
	got, err := c.client.GetUser(ctx, ext, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SettingsTemplate != "T10" || !reflect.DeepEqual(got.Custom, map[string]string{"office": "Oslo"}) {
		t.Fatalf("read back template %q custom %v", got.SettingsTemplate, got.Custom)
	}
}

func confDefaultExtension(t *testing.T, c *conn) {
	ctx := t.Context()
	if c.ext != (scim.Extension{}) || c.urn() != scim.DefaultCustomSchema {
		t.Fatalf("extension %+v, want the zero value", c.ext)
	}
	disc, err := c.client.Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := disc.Check(c.ext, []string{"office", "accessTier"}, true, nil); err != nil {
		t.Fatalf("Check = %v", err)
	}
	d := fullUser("def")
	u, err := c.client.CreateUser(ctx, c.ext, d)
	if err != nil {
		t.Fatal(err)
	}
	raw := c.get(t, "/Users/"+url.PathEscape(u.ID))
	if custom, _ := raw[scim.DefaultCustomSchema].(map[string]any); !reflect.DeepEqual(custom,
		map[string]any{"settingsTemplate": "T3", "accessTier": "gold", "office": "Oslo", "costCode": "X-1"}) {
		t.Fatalf("%s = %v", scim.DefaultCustomSchema, raw[scim.DefaultCustomSchema])
	}
	to := clone(d)
	to.Custom["office"] = "Bergen"
	to.SettingsTemplate = ""
	c.rec.take()
	if err := c.client.UpdateUser(ctx, c.ext, u.ID, d, to); err != nil {
		t.Fatal(err)
	}
	patches := c.patches(t)
	want := []string{"replace " + scim.DefaultCustomSchema + ":office", "remove " + scim.DefaultCustomSchema + ":settingsTemplate"}
	if len(patches) != 1 || !slices.Equal(opSummary(patches[0]), want) {
		t.Fatalf("PATCHes = %v, want %v", patches, want)
	}
	c.readBack(t, u.ID, to)
}

func confWrongToken(t *testing.T, c *conn) {
	ctx := t.Context()
	wrong := scim.New(scim.Config{BaseURL: c.base, Token: "wrong-" + token, RetryBackoff: time.Millisecond})
	check := func(name string, err error) {
		t.Helper()
		if !scim.IsAuth(err) || scim.IsRejected(err) || scim.IsRetryable(err) || scim.IsConflict(err) {
			t.Fatalf("%s with a wrong token: %v; want only IsAuth", name, err)
		}
		if strings.Contains(err.Error(), token) {
			t.Fatalf("error shows the token: %v", err)
		}
	}
	_, err := wrong.Discover(ctx)
	check("Discover", err)
	_, err = wrong.FindUserByExternalID(ctx, c.ext, "ad-1")
	check("FindUserByExternalID", err)
	check("ListUsers", wrong.ListUsers(ctx, c.ext, func(*scim.User) error { return nil }))
	_, err = wrong.CreateUser(ctx, c.ext, fullUser("auth"))
	check("CreateUser", err)
	_, err = wrong.CreateGroup(ctx, "Sales")
	check("CreateGroup", err)
	if n := wrong.Requests(); n != 5 {
		t.Fatalf("%d requests, want 5: an auth failure is not retried", n)
	}
	for _, endpoint := range []string{"/Users", "/Groups"} {
		if all := c.get(t, endpoint); all["totalResults"] != float64(0) {
			t.Fatalf("%s after refused writes: %v", endpoint, all)
		}
	}
}
