package devstack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
)

const (
	scimUserURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimGroupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	scimEnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	scimCustomURN     = "urn:ietf:params:scim:schemas:extension:usersync:2.0:User"
	scimPatchOpURN    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// scimPeer talks to a test devstack.SCIMMY server with plain net/http.
type scimPeer struct {
	t     *testing.T
	base  string
	token string
}

type scimResponse struct {
	status int
	body   map[string]any
	raw    string
}

func (p scimPeer) do(method, path string, body any) scimResponse {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := scimResponse{status: resp.StatusCode, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			p.t.Fatalf("%s %s: %s: body is not a JSON object: %v\n%s", method, path, resp.Status, err, raw)
		}
	}
	return r
}

// want fails the test unless the response has status.
func (p scimPeer) want(status int, method, path string, body any) map[string]any {
	p.t.Helper()
	r := p.do(method, path, body)
	if r.status != status {
		p.t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, r.status, status, r.raw)
	}
	return r.body
}

func patchOp(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{scimPatchOpURN}, "Operations": ops}
}

func filterQuery(f string) string { return "?filter=" + url.QueryEscape(f) }

// str follows keys through nested objects to a string ("" if absent).
func str(m map[string]any, keys ...string) string {
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

func objects(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		if o, ok := e.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

func values(v any, key string) []string {
	var out []string
	for _, o := range objects(v) {
		out = append(out, str(o, key))
	}
	return out
}

func newUser(userName string) map[string]any {
	return map[string]any{"schemas": []string{scimUserURN}, "userName": userName}
}

// schemaAttributes returns the attribute names /Schemas lists for urn, and
// whether it lists urn at all.
func (p scimPeer) schemaAttributes(urn string) ([]string, bool) {
	p.t.Helper()
	list := p.want(http.StatusOK, "GET", "/Schemas", nil)
	for _, s := range objects(list["Resources"]) {
		if str(s, "id") == urn {
			return values(s["attributes"], "name"), true
		}
	}
	return nil, false
}

func TestSCIMMYServesUsersAndGroups(t *testing.T) {
	const token = "t0ken-for-scimmy"
	p := scimPeer{t: t, base: devstacktest.SCIMMY(t, devstack.SCIMMY{Token: token}), token: token}

	// Authentication: the router's handler refuses a missing or wrong token.
	for _, tok := range []string{"", "wrong"} {
		r := scimPeer{t: t, base: p.base, token: tok}.do("GET", "/Users", nil)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("GET /Users with token %q: status %d, want 401; body: %s", tok, r.status, r.raw)
		}
	}

	spc := p.want(http.StatusOK, "GET", "/ServiceProviderConfig", nil)
	for feature, want := range map[string]bool{"patch": true, "filter": true, "bulk": false, "sort": false, "changePassword": false, "etag": false} {
		if got := spc[feature].(map[string]any)["supported"]; got != want {
			t.Errorf("ServiceProviderConfig %s.supported = %v, want %v", feature, got, want)
		}
	}
	if got := spc["filter"].(map[string]any)["maxResults"]; got != float64(200) {
		t.Errorf("filter.maxResults = %v, want the default 200", got)
	}

	attrs, ok := p.schemaAttributes(scimCustomURN)
	if !ok {
		t.Fatalf("/Schemas does not list %s", scimCustomURN)
	}
	if want := []string{"settingsTemplate", "accessTier", "office", "costCode"}; !slices.Equal(attrs, want) {
		t.Errorf("%s attributes = %v, want %v", scimCustomURN, attrs, want)
	}
	if _, ok := p.schemaAttributes(scimEnterpriseURN); !ok {
		t.Errorf("/Schemas does not list %s", scimEnterpriseURN)
	}

	// Create with both extensions.
	alice := p.want(http.StatusCreated, "POST", "/Users", map[string]any{
		"schemas":         []string{scimUserURN, scimEnterpriseURN, scimCustomURN},
		"userName":        "Alice@Example.org",
		"externalId":      "ad-guid-alice",
		"name":            map[string]any{"givenName": "Alice", "familyName": "Liddell"},
		"emails":          []any{map[string]any{"value": "alice@example.org", "type": "work", "primary": true}},
		"active":          true,
		scimEnterpriseURN: map[string]any{"employeeNumber": "1001", "department": "R&D"},
		scimCustomURN:     map[string]any{"accessTier": "gold", "office": "Berlin"},
	})
	aliceID := str(alice, "id")
	if aliceID == "" || str(alice, "meta", "created") == "" || str(alice, "meta", "lastModified") == "" {
		t.Fatalf("created user lacks id or meta: %v", alice)
	}
	if got := str(alice, scimCustomURN, "accessTier"); got != "gold" {
		t.Errorf("created %s:accessTier = %q, want gold", scimCustomURN, got)
	}
	if got := str(alice, scimEnterpriseURN, "employeeNumber"); got != "1001" {
		t.Errorf("created enterprise employeeNumber = %q, want 1001", got)
	}

	// userName is unique, case-insensitively.
	dup := p.do("POST", "/Users", newUser("alice@example.org"))
	if dup.status != http.StatusConflict || str(dup.body, "scimType") != "uniqueness" {
		t.Errorf("duplicate userName: status %d, want 409 uniqueness; body: %s", dup.status, dup.raw)
	}

	list := p.want(http.StatusOK, "GET", "/Users"+filterQuery(`externalId eq "ad-guid-alice"`), nil)
	if list["totalResults"] != float64(1) || !slices.Equal(values(list["Resources"], "id"), []string{aliceID}) {
		t.Fatalf("filter on externalId: %v", list)
	}
	list = p.want(http.StatusOK, "GET", "/Users"+filterQuery(`userName eq "Alice@Example.org"`), nil)
	if list["totalResults"] != float64(1) {
		t.Errorf("filter on userName: %v", list)
	}

	// PATCH an attribute of the custom extension by its full path.
	p.want(http.StatusOK, "PATCH", "/Users/"+aliceID, patchOp(map[string]any{
		"op": "replace", "path": scimCustomURN + ":accessTier", "value": "silver",
	}))
	got := p.want(http.StatusOK, "GET", "/Users/"+aliceID, nil)
	if str(got, scimCustomURN, "accessTier") != "silver" || str(got, scimCustomURN, "office") != "Berlin" {
		t.Errorf("after PATCH replace accessTier: %v", got[scimCustomURN])
	}

	// A bare extension URN as the path of a remove: devstack.SCIMMY answers 400
	// (scimType invalidValue: its PatchOp fails while unsetting the
	// extension) and changes nothing.
	r := p.do("PATCH", "/Users/"+aliceID, patchOp(map[string]any{"op": "remove", "path": scimCustomURN}))
	if r.status != http.StatusBadRequest {
		t.Errorf("PATCH remove path %s: status %d, want 400; body: %s", scimCustomURN, r.status, r.raw)
	}
	t.Logf("PATCH remove of a bare extension URN: %d %s", r.status, r.raw)
	got = p.want(http.StatusOK, "GET", "/Users/"+aliceID, nil)
	if str(got, scimCustomURN, "accessTier") != "silver" {
		t.Errorf("failed PATCH changed the user: %v", got[scimCustomURN])
	}
	// An undeclared attribute in a path: 400 invalidPath.
	r = p.do("PATCH", "/Users/"+aliceID, patchOp(map[string]any{"op": "replace", "path": scimCustomURN + ":nope", "value": "x"}))
	if r.status != http.StatusBadRequest || str(r.body, "scimType") != "invalidPath" {
		t.Errorf("PATCH of an undeclared attribute: status %d, want 400 invalidPath; body: %s", r.status, r.raw)
	}

	p.want(http.StatusNotFound, "GET", "/Users/no-such-id", nil)

	// Groups: add members, remove one by a filter path.
	bob := str(p.want(http.StatusCreated, "POST", "/Users", newUser("bob@example.org")), "id")
	group := p.want(http.StatusCreated, "POST", "/Groups", map[string]any{"schemas": []string{scimGroupURN}, "displayName": "Staff"})
	groupID := str(group, "id")
	r = p.do("POST", "/Groups", map[string]any{"schemas": []string{scimGroupURN}, "displayName": "Staff"})
	if r.status != http.StatusConflict {
		t.Errorf("duplicate group displayName: status %d, want 409; body: %s", r.status, r.raw)
	}
	g := p.want(http.StatusOK, "PATCH", "/Groups/"+groupID, patchOp(map[string]any{
		"op": "add", "path": "members", "value": []any{map[string]any{"value": aliceID}, map[string]any{"value": bob}},
	}))
	if got := values(g["members"], "value"); !slices.Equal(got, []string{aliceID, bob}) {
		t.Fatalf("members after add: %v", got)
	}
	if got := values(p.want(http.StatusOK, "GET", "/Users/"+bob, nil)["groups"], "value"); !slices.Equal(got, []string{groupID}) {
		t.Errorf("bob's groups = %v, want [%s]", got, groupID)
	}
	p.want(http.StatusOK, "PATCH", "/Groups/"+groupID, patchOp(map[string]any{
		"op": "remove", "path": fmt.Sprintf("members[value eq %q]", aliceID),
	}))
	g = p.want(http.StatusOK, "GET", "/Groups"+filterQuery(`displayName eq "Staff"`), nil)
	groups := objects(g["Resources"])
	if len(groups) != 1 || !slices.Equal(values(groups[0]["members"], "value"), []string{bob}) {
		t.Fatalf("group after removing alice: %v", g)
	}

	// Deleting a user ends its memberships.
	p.want(http.StatusNoContent, "DELETE", "/Users/"+bob, nil)
	p.want(http.StatusNotFound, "GET", "/Users/"+bob, nil)
	if m := p.want(http.StatusOK, "GET", "/Groups/"+groupID, nil)["members"]; m != nil {
		t.Errorf("members after deleting bob: %v", m)
	}
	p.want(http.StatusNoContent, "DELETE", "/Groups/"+groupID, nil)
	p.want(http.StatusNotFound, "DELETE", "/Groups/"+groupID, nil)
}

func TestSCIMMYPagesAtMaxResults(t *testing.T) {
	const token = "paging-token"
	p := scimPeer{t: t, base: devstacktest.SCIMMY(t, devstack.SCIMMY{Token: token, MaxResults: 2, CustomSchema: "none"}), token: token}

	spc := p.want(http.StatusOK, "GET", "/ServiceProviderConfig", nil)
	if got := spc["filter"].(map[string]any)["maxResults"]; got != float64(2) {
		t.Errorf("filter.maxResults = %v, want 2", got)
	}
	if _, ok := p.schemaAttributes(scimCustomURN); ok {
		t.Errorf("CustomSchema none, yet /Schemas lists %s", scimCustomURN)
	}

	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("user%d@example.org", i))
		p.want(http.StatusCreated, "POST", "/Users", newUser(want[i]))
	}
	var seen []string
	for start := 1; ; start += 2 {
		page := p.want(http.StatusOK, "GET", fmt.Sprintf("/Users?startIndex=%d&count=10", start), nil)
		if page["totalResults"] != float64(5) {
			t.Fatalf("startIndex %d: totalResults = %v, want 5", start, page["totalResults"])
		}
		names := values(page["Resources"], "userName")
		if len(names) > 2 {
			t.Fatalf("startIndex %d: %d resources, more than maxResults 2", start, len(names))
		}
		if len(names) == 0 {
			break
		}
		if start <= 3 && len(names) != 2 {
			t.Fatalf("startIndex %d: %d resources, want 2", start, len(names))
		}
		seen = append(seen, names...)
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("paged through %v, want %v", seen, want)
	}
	// Without count, a page is maxResults long too.
	page := p.want(http.StatusOK, "GET", "/Users", nil)
	if n := len(objects(page["Resources"])); n != 2 {
		t.Errorf("GET /Users without count: %d resources, want 2", n)
	}
}

func TestSCIMMYCustomExtensionIsConfigurable(t *testing.T) {
	const token = "ext-token"
	const urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
	p := scimPeer{t: t, base: devstacktest.SCIMMY(t, devstack.SCIMMY{Token: token, CustomSchema: urn, CustomAttributes: []string{"badge", "floor"}}), token: token}

	attrs, ok := p.schemaAttributes(urn)
	if !ok || !slices.Equal(attrs, []string{"badge", "floor"}) {
		t.Fatalf("/Schemas: %s attributes %v (listed: %v), want [badge floor]", urn, attrs, ok)
	}
	if _, ok := p.schemaAttributes(scimCustomURN); ok {
		t.Errorf("/Schemas lists the default %s too", scimCustomURN)
	}
	u := p.want(http.StatusCreated, "POST", "/Users", map[string]any{
		"schemas": []string{scimUserURN, urn}, "userName": "carol", urn: map[string]any{"badge": "B-7"},
	})
	if str(u, urn, "badge") != "B-7" {
		t.Errorf("created user's %s: %v", urn, u[urn])
	}
}
