package scimsandbox_test

import (
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/usersync/usersync/internal/scimsandbox"
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func TestPatchSubAttributeKeepsSiblings(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"name":{"givenName":"Ann","familyName":"Lee"}`)
	status, out := patchUser(t, s, id, `[{"op":"replace","path":"name.givenName","value":"Anne"}]`)
	mustStatus(t, http.StatusOK, status, out)
	u := user(t, s, id)
	if u.GivenName != "Anne" || u.FamilyName != "Lee" {
		t.Fatalf("name = %q %q, want Anne Lee", u.GivenName, u.FamilyName)
	}
}

func TestPatchMultiValuedAddReplaceRemove(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"emails":[{"value":"ann@example.com","type":"work","primary":true}]`)

	status, out := patchUser(t, s, id, `[{"op":"add","path":"emails","value":[{"value":"ann@home.example","type":"home"}]}]`)
	mustStatus(t, http.StatusOK, status, out)
	if got := user(t, s, id).Emails; !reflect.DeepEqual(got, []string{"ann@example.com", "ann@home.example"}) {
		t.Fatalf("after add, emails = %v", got)
	}

	status, out = patchUser(t, s, id, `[{"op":"remove","path":"emails[type eq \"home\"]"}]`)
	mustStatus(t, http.StatusOK, status, out)
	if got := user(t, s, id).Emails; !reflect.DeepEqual(got, []string{"ann@example.com"}) {
		t.Fatalf("after filtered remove, emails = %v", got)
	}

	status, out = patchUser(t, s, id, `[{"op":"replace","path":"emails","value":[{"value":"a.lee@example.com","type":"work"}]}]`)
	mustStatus(t, http.StatusOK, status, out)
	if got := user(t, s, id).Emails; !reflect.DeepEqual(got, []string{"a.lee@example.com"}) {
		t.Fatalf("after replace, emails = %v", got)
	}

	status, out = patchUser(t, s, id, `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"lee@example.com"}]`)
	mustStatus(t, http.StatusOK, status, out)
	if got := user(t, s, id).Emails; !reflect.DeepEqual(got, []string{"lee@example.com"}) {
		t.Fatalf("after value-path replace, emails = %v", got)
	}

	status, out = patchUser(t, s, id, `[{"op":"remove","path":"emails"}]`)
	mustStatus(t, http.StatusOK, status, out)
	if got := user(t, s, id).Emails; got != nil {
		t.Fatalf("after remove, emails = %v", got)
	}
}

func TestPatchAddingAnExistingEntitlementDoesNotDuplicate(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"entitlements":[{"value":"Meeting"}]`)
	status, out := patchUser(t, s, id, `[{"op":"add","path":"entitlements","value":[{"value":"Meeting"},{"value":"Webinar"}]}]`)
	mustStatus(t, http.StatusOK, status, out)
	if got := user(t, s, id).Entitlements; !reflect.DeepEqual(got, []string{"Meeting", "Webinar"}) {
		t.Fatalf("entitlements = %v", got)
	}
}

func TestPatchExtensionPaths(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", "")

	status, out := patchUser(t, s, id, `[{"op":"replace","path":"`+enterprise+`:department","value":"Sales"},
		{"op":"add","path":"`+enterprise+`:costCenter","value":"CC-1"}]`)
	mustStatus(t, http.StatusOK, status, out)
	ext := user(t, s, id).Extensions[enterprise]
	if ext["department"] != "Sales" || ext["costCenter"] != "CC-1" {
		t.Fatalf("enterprise = %v", ext)
	}
	schemas, _ := out["schemas"].([]any)
	if len(schemas) != 2 || schemas[1] != enterprise {
		t.Fatalf("schemas = %v, want core and enterprise", schemas)
	}

	status, out = patchUser(t, s, id, `[{"op":"remove","path":"`+enterprise+`:department"}]`)
	mustStatus(t, http.StatusOK, status, out)
	ext = user(t, s, id).Extensions[enterprise]
	if _, still := ext["department"]; still || ext["costCenter"] != "CC-1" {
		t.Fatalf("after remove, enterprise = %v", ext)
	}

	// A value object without path may address an extension by its URN.
	status, out = patchUser(t, s, id, `[{"op":"replace","value":{"displayName":"Ann L","`+enterprise+`":{"division":"EMEA"}}}]`)
	mustStatus(t, http.StatusOK, status, out)
	u := user(t, s, id)
	if u.DisplayName != "Ann L" || u.Extensions[enterprise]["division"] != "EMEA" || u.Extensions[enterprise]["costCenter"] != "CC-1" {
		t.Fatalf("after pathless replace: displayName %q, enterprise %v", u.DisplayName, u.Extensions[enterprise])
	}

	// A schema URN alone is not an attribute path (RFC 7644 section 3.5.2): each attribute is
	// removed by its own path, and the extension disappears with its last attribute.
	status, out = patchUser(t, s, id, `[{"op":"remove","path":"`+enterprise+`"}]`)
	mustStatus(t, http.StatusBadRequest, status, out)
	if out["scimType"] != "invalidPath" {
		t.Fatalf("bare URN remove: %v, want invalidPath", out)
	}
	status, out = patchUser(t, s, id, `[{"op":"remove","path":"`+enterprise+`:costCenter"},{"op":"remove","path":"`+enterprise+`:division"}]`)
	mustStatus(t, http.StatusOK, status, out)
	if ext, ok := user(t, s, id).Extensions[enterprise]; ok {
		t.Fatalf("after removing every attribute of the extension: %v", ext)
	}
	if schemas, _ := out["schemas"].([]any); len(schemas) != 1 {
		t.Fatalf("schemas = %v, want only the core schema", schemas)
	}
}

func TestPatchAttributeNamesAndOpsAreCaseInsensitive(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"name":{"givenName":"Ann"}`)
	status, out := patchUser(t, s, id, `[{"op":"Replace","path":"NAME.GIVENNAME","value":"Anne"},{"op":"Replace","path":"Active","value":false}]`)
	mustStatus(t, http.StatusOK, status, out)
	u := user(t, s, id)
	if u.GivenName != "Anne" || u.Active {
		t.Fatalf("givenName %q active %v, want Anne false", u.GivenName, u.Active)
	}
}

func TestPatchErrorsLeaveTheUserUnchanged(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"displayName":"Ann","emails":[{"value":"ann@example.com","type":"work"}]`)
	cases := []struct {
		name, ops, scimType string
	}{
		{"remove without path", `[{"op":"remove"}]`, "noTarget"},
		{"unknown op", `[{"op":"move","path":"displayName","value":"x"}]`, "invalidSyntax"},
		{"filter matching nothing", `[{"op":"replace","path":"displayName","value":"Changed"},
			{"op":"replace","path":"emails[type eq \"home\"].value","value":"x@y"}]`, "noTarget"},
		{"read-only id", `[{"op":"replace","path":"id","value":"mine"}]`, "mutability"},
		{"bad filter", `[{"op":"remove","path":"emails[type eq home]"}]`, "invalidPath"},
		{"userName removed", `[{"op":"remove","path":"userName"}]`, "mutability"}, // RFC 7644 3.5.2: required
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := patchUser(t, s, id, c.ops)
			mustStatus(t, http.StatusBadRequest, status, out)
			if out["scimType"] != c.scimType || out["status"] != "400" {
				t.Fatalf("error = %v, want scimType %s and status \"400\"", out, c.scimType)
			}
			if u := user(t, s, id); u.DisplayName != "Ann" || u.UserName != "ann@example.com" || u.Version != 1 {
				t.Fatalf("user changed by a failed PATCH: %+v", u)
			}
		})
	}
}

func TestPatchRequiresPatchOpSchema(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", "")
	status, out := call(t, s, "PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`)
	mustStatus(t, http.StatusBadRequest, status, out)
}

func TestGroupMembersPatch(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	a := createUser(t, s, "a@example.com", "")
	b := createUser(t, s, "b@example.com", "")
	c := createUser(t, s, "c@example.com", "")
	status, out := call(t, s, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Sales"}`)
	mustStatus(t, http.StatusCreated, status, out)
	gid := out["id"].(string)
	patch := func(ops string) {
		t.Helper()
		status, out := call(t, s, "PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+ops+`}`)
		mustStatus(t, http.StatusNoContent, status, out)
	}
	members := func(want ...string) {
		t.Helper()
		got := s.GroupMembers("sales")
		wantSorted := append([]string{}, want...)
		slices.Sort(wantSorted)
		if !reflect.DeepEqual(got, wantSorted) {
			t.Fatalf("members = %v, want %v", got, wantSorted)
		}
	}
	patch(`[{"op":"add","path":"members","value":[{"value":"` + a + `"},{"value":"` + b + `"}]}]`)
	members(a, b)
	patch(`[{"op":"add","path":"members","value":[{"value":"` + a + `"}]}]`) // again: no duplicate
	members(a, b)
	patch(`[{"op":"remove","path":"members[value eq \"` + a + `\"]"}]`)
	members(b)
	patch(`[{"op":"remove","path":"members[value eq \"` + a + `\"]"}]`) // already gone: no-op
	members(b)
	patch(`[{"op":"replace","path":"members","value":[{"value":"` + c + `"}]}]`)
	members(c)
	patch(`[{"op":"remove","path":"members","value":[{"value":"` + c + `"}]}]`) // Azure-style remove
	members()

	status, out = call(t, s, "PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"add","path":"members","value":[{"value":"no-such-user"}]}]}`)
	mustStatus(t, http.StatusBadRequest, status, out)
}
