package scimsandbox_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/usersync/usersync/internal/scimsandbox"
)

func list(t *testing.T, s *scimsandbox.Server, query url.Values) map[string]any {
	t.Helper()
	status, out := call(t, s, "GET", "/Users?"+query.Encode(), "")
	mustStatus(t, http.StatusOK, status, out)
	return out
}

func userNames(out map[string]any) []string {
	var names []string
	for _, r := range out["Resources"].([]any) {
		names = append(names, r.(map[string]any)["userName"].(string))
	}
	return names
}

func TestListPagesCoverEveryUserOnce(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	for i := range 25 {
		createUser(t, s, fmt.Sprintf("user%02d@example.com", i), "")
	}
	seen := map[string]bool{}
	for start := 1; start <= 25; start += 10 {
		out := list(t, s, url.Values{"startIndex": {fmt.Sprint(start)}, "count": {"10"}})
		if out["totalResults"] != float64(25) || out["startIndex"] != float64(start) {
			t.Fatalf("page at %d: totalResults %v startIndex %v", start, out["totalResults"], out["startIndex"])
		}
		names := userNames(out)
		if want := min(10, 25-start+1); len(names) != want || out["itemsPerPage"] != float64(want) {
			t.Fatalf("page at %d has %d users (itemsPerPage %v), want %d", start, len(names), out["itemsPerPage"], want)
		}
		for _, n := range names {
			if seen[n] {
				t.Fatalf("%s returned twice", n)
			}
			seen[n] = true
		}
	}
	if len(seen) != 25 {
		t.Fatalf("pages covered %d users, want 25", len(seen))
	}
	if out := list(t, s, url.Values{"count": {"0"}}); out["totalResults"] != float64(25) || len(userNames(out)) != 0 {
		t.Fatalf("count=0: %v", out)
	}
	if out := list(t, s, url.Values{"startIndex": {"100"}}); len(userNames(out)) != 0 {
		t.Fatalf("startIndex past the end returned users")
	}
	if out := list(t, s, nil); out["schemas"].([]any)[0] != "urn:ietf:params:scim:api:messages:2.0:ListResponse" {
		t.Fatalf("schemas = %v", out["schemas"])
	}
}

func TestListFilters(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	annID := createUser(t, s, "Ann@Example.com", `,"externalId":"guid-A","emails":[{"value":"ann@example.com"}],"active":true`)
	createUser(t, s, "bob@example.com", `,"externalId":"guid-b","active":false`)
	createUser(t, s, `q"uote\d@example.com`, `,"externalId":"x\"y"`)

	cases := []struct {
		filter string
		want   []string
	}{
		{`userName eq "ann@example.com"`, []string{"Ann@Example.com"}}, // case-insensitive
		{`externalId eq "guid-A"`, []string{"Ann@Example.com"}},
		{`externalId eq "guid-a"`, nil}, // externalId is caseExact
		{`id eq "` + annID + `"`, []string{"Ann@Example.com"}},
		{`emails.value eq "ANN@example.com"`, []string{"Ann@Example.com"}},
		{`emails[value eq "ann@example.com"]`, []string{"Ann@Example.com"}},
		{`userName eq "bob@example.com" and active eq false`, []string{"bob@example.com"}},
		{`userName eq "bob@example.com" and active eq true`, nil},
		{`userName sw "ann" or externalId eq "guid-b"`, []string{"Ann@Example.com", "bob@example.com"}},
		{`userName eq "q\"uote\\d@example.com"`, []string{`q"uote\d@example.com`}},
		{`externalId eq "x\"y"`, []string{`q"uote\d@example.com`}},
		{`externalId eq "x\" or userName pr or externalId eq \""`, nil}, // an escaped injection stays a value
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.com"`, []string{"bob@example.com"}},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			got := userNames(list(t, s, url.Values{"filter": {c.filter}}))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	for _, bad := range []string{`userName eq ann`, `userName xx "a"`, `userName eq "a`, `(userName eq "a"`} {
		status, out := call(t, s, "GET", "/Users?"+url.Values{"filter": {bad}}.Encode(), "")
		mustStatus(t, http.StatusBadRequest, status, out)
		if out["scimType"] != "invalidFilter" {
			t.Fatalf("%s: scimType %v, want invalidFilter", bad, out["scimType"])
		}
	}
}

func TestGroupsFilterAndExcludedMembers(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	uid := createUser(t, s, "a@example.com", "")
	status, out := call(t, s, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
		"displayName":"Sales","members":[{"value":"`+uid+`"}]}`)
	mustStatus(t, http.StatusCreated, status, out)
	status, out = call(t, s, "GET", "/Groups?"+url.Values{"filter": {`displayName eq "sales"`}, "excludedAttributes": {"members"}}.Encode(), "")
	mustStatus(t, http.StatusOK, status, out)
	res := out["Resources"].([]any)
	if len(res) != 1 {
		t.Fatalf("found %d groups, want 1", len(res))
	}
	g := res[0].(map[string]any)
	if _, has := g["members"]; has || g["displayName"] != "Sales" || g["id"] == nil {
		t.Fatalf("group = %v, want Sales without members", g)
	}
	status, out = call(t, s, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"SALES"}`)
	mustStatus(t, http.StatusConflict, status, out)
}
