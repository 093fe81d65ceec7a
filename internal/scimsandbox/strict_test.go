package scimsandbox_test

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/scimsandbox"
)

const (
	coreUser  = "urn:ietf:params:scim:schemas:core:2.0:User"
	coreGroup = "urn:ietf:params:scim:schemas:core:2.0:Group"
	custom    = scimsandbox.DefaultCustomSchema
)

// wantError checks an RFC 7644 section 3.12 error body.
func wantError(t *testing.T, status int, out map[string]any, wantStatus int, scimType, detailHas string) {
	t.Helper()
	mustStatus(t, wantStatus, status, out)
	if out["scimType"] != scimType || out["status"] != strconv.Itoa(wantStatus) ||
		out["schemas"].([]any)[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Fatalf("error = %v, want scimType %s", out, scimType)
	}
	if detail, _ := out["detail"].(string); !strings.Contains(detail, detailHas) {
		t.Fatalf("detail %q does not mention %q", detail, detailHas)
	}
}

func TestPostAndPutRejectWhatTheSchemasDoNotDeclare(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	const u = `"userName":"ann@example.com"`
	cases := []struct {
		name, body, scimType, detailHas string
	}{
		{"unknown core attribute", `{"schemas":["` + coreUser + `"],` + u + `,"shoeSize":"42"}`, "invalidValue", "shoeSize"},
		{"unknown sub-attribute", `{"schemas":["` + coreUser + `"],` + u + `,"name":{"givenName":"Ann","nick":"A"}}`, "invalidValue", "nick"},
		{"unknown sub-attribute of a multi-valued attribute", `{"schemas":["` + coreUser + `"],` + u + `,"emails":[{"value":"a@x","label":"w"}]}`, "invalidValue", "label"},
		{"undeclared enterprise attribute", `{"schemas":["` + coreUser + `","` + enterprise + `"],` + u + `,"` + enterprise + `":{"badge":"7"}}`, "invalidValue", "badge"},
		{"undeclared custom attribute", `{"schemas":["` + coreUser + `","` + custom + `"],` + u + `,"` + custom + `":{"shoeSize":"42"}}`, "invalidValue", "shoeSize"},
		{"undeclared extension URN key", `{"schemas":["` + coreUser + `"],` + u + `,"urn:acme:params:scim:schemas:extension:acme:2.0:User":{"x":"y"}}`, "invalidValue", "urn:acme"},
		{"core URN as a key", `{"schemas":["` + coreUser + `"],` + u + `,"` + coreUser + `":{"displayName":"Ann"}}`, "invalidValue", "top level"},
		{"URN-qualified attribute as a key", `{"schemas":["` + coreUser + `","` + enterprise + `"],` + u + `,"` + enterprise + `:department":"Sales"}`, "invalidValue", "department"},
		{"extension data not listed in schemas", `{"schemas":["` + coreUser + `"],` + u + `,"` + enterprise + `":{"department":"Sales"}}`, "invalidSyntax", enterprise},
		{"schemas lists an undeclared URN", `{"schemas":["` + coreUser + `","urn:acme:x:2.0:User"],` + u + `}`, "invalidValue", "urn:acme:x:2.0:User"},
		{"schemas lists the Group schema", `{"schemas":["` + coreUser + `","` + coreGroup + `"],` + u + `}`, "invalidValue", coreGroup},
		{"schemas without the core schema", `{"schemas":["` + enterprise + `"],` + u + `}`, "invalidSyntax", coreUser},
		{"schemas missing", `{` + u + `}`, "invalidSyntax", "schemas"},
		{"schemas not an array", `{"schemas":"` + coreUser + `",` + u + `}`, "invalidSyntax", "schemas"},
		{"schemas with a number", `{"schemas":["` + coreUser + `",7],` + u + `}`, "invalidSyntax", "schemas"},
		{"not JSON", `{"schemas":`, "invalidSyntax", "JSON"},
		{"boolean as a string", `{"schemas":["` + coreUser + `"],` + u + `,"active":"true"}`, "invalidValue", "active"},
		{"string as a number", `{"schemas":["` + coreUser + `"],"userName":42}`, "invalidValue", "userName"},
		{"string as an object", `{"schemas":["` + coreUser + `"],` + u + `,"displayName":{"x":"y"}}`, "invalidValue", "displayName"},
		{"complex as a string", `{"schemas":["` + coreUser + `"],` + u + `,"name":"Ann Lee"}`, "invalidValue", "name"},
		{"multi-valued as an object", `{"schemas":["` + coreUser + `"],` + u + `,"emails":{"value":"a@x"}}`, "invalidValue", "emails"},
		{"multi-valued complex with strings", `{"schemas":["` + coreUser + `"],` + u + `,"entitlements":["Meeting"]}`, "invalidValue", "entitlements[0]"},
		{"null element", `{"schemas":["` + coreUser + `"],` + u + `,"roles":[null]}`, "invalidValue", "roles[0]"},
		{"sub-attribute of the wrong type", `{"schemas":["` + coreUser + `"],` + u + `,"emails":[{"value":"a@x","primary":"yes"}]}`, "invalidValue", "emails[0].primary"},
		{"extension not an object", `{"schemas":["` + coreUser + `","` + enterprise + `"],` + u + `,"` + enterprise + `":"Sales"}`, "invalidValue", enterprise},
		{"extension attribute of the wrong type", `{"schemas":["` + coreUser + `","` + enterprise + `"],` + u + `,"` + enterprise + `":{"department":5}}`, "invalidValue", "department"},
		{"custom attribute of the wrong type", `{"schemas":["` + coreUser + `","` + custom + `"],` + u + `,"` + custom + `":{"office":true}}`, "invalidValue", "office"},
		{"complex extension attribute as a string", `{"schemas":["` + coreUser + `","` + enterprise + `"],` + u + `,"` + enterprise + `":{"manager":"boss"}}`, "invalidValue", "manager"},
		{"userName missing", `{"schemas":["` + coreUser + `"],"displayName":"Ann"}`, "invalidValue", "userName"},
		{"userName null", `{"schemas":["` + coreUser + `"],"userName":null}`, "invalidValue", "userName"},
		{"userName blank", `{"schemas":["` + coreUser + `"],"userName":"  "}`, "invalidValue", "userName"},
		{"two primary emails", `{"schemas":["` + coreUser + `"],` + u + `,"emails":[{"value":"a@x","primary":true},{"value":"b@x","primary":true}]}`, "invalidValue", "primary"},
		{"an attribute twice in different case", `{"schemas":["` + coreUser + `"],` + u + `,"displayName":"A","DisplayName":"B"}`, "invalidSyntax", "displayName"},
	}
	for _, c := range cases {
		t.Run("POST "+c.name, func(t *testing.T) {
			status, out := call(t, s, "POST", "/Users", c.body)
			wantError(t, status, out, http.StatusBadRequest, c.scimType, c.detailHas)
		})
	}
	if n := len(s.Users()); n != 0 {
		t.Fatalf("rejected POSTs stored %d users", n)
	}

	id := createUser(t, s, "ann@example.com", `,"displayName":"Ann"`)
	for _, c := range cases[:10] {
		t.Run("PUT "+c.name, func(t *testing.T) {
			status, out := call(t, s, "PUT", "/Users/"+id, c.body)
			wantError(t, status, out, http.StatusBadRequest, c.scimType, c.detailHas)
			if u := user(t, s, id); u.Version != 1 || u.DisplayName != "Ann" {
				t.Fatalf("rejected PUT changed the user: %+v", u)
			}
		})
	}
}

func TestGroupBodiesAreCheckedToo(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	cases := []struct {
		name, body, scimType, detailHas string
	}{
		{"user extension on a group", `{"schemas":["` + coreGroup + `","` + enterprise + `"],"displayName":"Sales","` + enterprise + `":{"department":"x"}}`, "invalidValue", enterprise},
		{"user attribute on a group", `{"schemas":["` + coreGroup + `"],"displayName":"Sales","userName":"x"}`, "invalidValue", "userName"},
		{"User schema for a group", `{"schemas":["` + coreUser + `"],"displayName":"Sales"}`, "invalidValue", coreUser},
		{"members as an object", `{"schemas":["` + coreGroup + `"],"displayName":"Sales","members":{"value":"x"}}`, "invalidValue", "members"},
		{"displayName missing", `{"schemas":["` + coreGroup + `"]}`, "invalidValue", "displayName"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := call(t, s, "POST", "/Groups", c.body)
			wantError(t, status, out, http.StatusBadRequest, c.scimType, c.detailHas)
		})
	}
}

func TestPostIgnoresReadOnlyAndMatchesNamesCaseInsensitively(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	lowerEnt, upperCustom := strings.ToLower(enterprise), strings.ToUpper(custom)
	status, out := call(t, s, "POST", "/Users", `{"schemas":["`+strings.ToUpper(coreUser)+`","`+strings.ToUpper(enterprise)+`","`+custom+`"],
		"id":"client-chosen","meta":{"version":"W/\"9\""},"groups":[{"value":"g1"}],
		"USERNAME":"ann@example.com","Name":{"GIVENNAME":"Ann"},"Emails":[{"VALUE":"ann@example.com","Primary":true}],
		"`+lowerEnt+`":{"Department":"Sales","manager":{"value":"m1","displayName":"Boss"}},
		"`+upperCustom+`":{"OFFICE":"Lyon","settingsTemplate":"T1"}}`)
	mustStatus(t, http.StatusCreated, status, out)
	if out["id"] == "client-chosen" || out["meta"].(map[string]any)["version"] != `W/"1"` || out["groups"] != nil {
		t.Fatalf("readOnly values were not ignored: %v", out)
	}
	u := user(t, s, out["id"].(string))
	if u.UserName != "ann@example.com" || u.GivenName != "Ann" || !reflect.DeepEqual(u.Emails, []string{"ann@example.com"}) {
		t.Fatalf("core attributes not stored under their schema names: %+v", u)
	}
	wantExt := map[string]map[string]any{
		enterprise: {"department": "Sales", "manager": map[string]any{"value": "m1"}},
		custom:     {"office": "Lyon", "settingsTemplate": "T1"},
	}
	if !reflect.DeepEqual(u.Extensions, wantExt) {
		t.Fatalf("extensions = %v, want %v", u.Extensions, wantExt)
	}
	schemas := out["schemas"].([]any)
	if len(schemas) != 3 || schemas[0] != coreUser {
		t.Fatalf("schemas = %v", schemas)
	}
	// Unassigned values (null, empty arrays, empty extension objects) are simply absent.
	createUser(t, s, "bob@example.com", `,"displayName":null,"emails":[],"`+enterprise+`":{}`)
	if u, _ := s.UserByUserName("bob@example.com"); u.Extensions != nil || u.Emails != nil {
		t.Fatalf("bob = %+v", u)
	}
}

func TestPatchRejectionsLeaveTheUserUnchanged(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"displayName":"Ann","name":{"givenName":"Ann"},
		"emails":[{"value":"ann@example.com","type":"work","primary":true}],
		"schemas":["`+coreUser+`","`+custom+`"],"`+custom+`":{"office":"Lyon"}`)
	cases := []struct {
		name, ops, scimType, detailHas string
	}{
		// Paths.
		{"bare custom URN remove", `[{"op":"remove","path":"` + custom + `"}]`, "invalidPath", custom},
		{"bare extension URN replace", `[{"op":"replace","path":"` + enterprise + `","value":{"department":"x"}}]`, "invalidPath", enterprise},
		{"bare core URN", `[{"op":"replace","path":"` + coreUser + `","value":{"displayName":"x"}}]`, "invalidPath", coreUser},
		{"undeclared URN", `[{"op":"replace","path":"urn:acme:params:scim:schemas:extension:acme:2.0:User:x","value":"y"}]`, "invalidPath", "urn:acme"},
		{"Group URN on a user", `[{"op":"replace","path":"` + coreGroup + `:displayName","value":"y"}]`, "invalidPath", coreGroup},
		{"unknown attribute", `[{"op":"replace","path":"shoeSize","value":"42"}]`, "invalidPath", "shoeSize"},
		{"unknown sub-attribute", `[{"op":"replace","path":"name.nick","value":"A"}]`, "invalidPath", "nick"},
		{"sub-attribute of a simple attribute", `[{"op":"replace","path":"displayName.first","value":"A"}]`, "invalidPath", "displayName"},
		{"three levels", `[{"op":"replace","path":"name.givenName.x","value":"A"}]`, "invalidPath", "givenName.x"},
		{"trailing dot", `[{"op":"replace","path":"displayName.","value":"A"}]`, "invalidPath", "displayName."},
		{"filter on a single-valued attribute", `[{"op":"replace","path":"name[givenName eq \"Ann\"].givenName","value":"A"}]`, "invalidPath", "single-valued"},
		{"filter on an unknown sub-attribute", `[{"op":"remove","path":"emails[label eq \"work\"]"}]`, "invalidPath", "label"},
		{"unknown sub-attribute after a filter", `[{"op":"replace","path":"emails[type eq \"work\"].label","value":"x"}]`, "invalidPath", "label"},
		{"unbalanced filter", `[{"op":"remove","path":"emails[type eq \"work\""}]`, "invalidPath", "unbalanced"},
		{"undeclared enterprise attribute", `[{"op":"add","path":"` + enterprise + `:badge","value":"7"}]`, "invalidPath", "badge"},
		{"undeclared custom attribute", `[{"op":"add","path":"` + custom + `:shoeSize","value":"42"}]`, "invalidPath", "shoeSize"},
		{"undeclared custom attribute remove", `[{"op":"remove","path":"` + custom + `:shoeSize"}]`, "invalidPath", "shoeSize"},
		// Ops and targets.
		{"unknown op", `[{"op":"move","path":"displayName","value":"x"}]`, "invalidSyntax", "move"},
		{"no operations", `[]`, "invalidValue", "Operations"},
		{"add without value", `[{"op":"add","path":"displayName"}]`, "invalidValue", "value"},
		{"remove without path", `[{"op":"remove"}]`, "noTarget", "path"},
		{"remove with a filter matching nothing", `[{"op":"remove","path":"emails[type eq \"home\"]"}]`, "noTarget", "emails"},
		{"replace with a filter matching nothing", `[{"op":"replace","path":"emails[type eq \"home\"].value","value":"x@y"}]`, "noTarget", "emails"},
		{"sub-attribute of absent multi-valued", `[{"op":"replace","path":"phoneNumbers.type","value":"work"}]`, "noTarget", "phoneNumbers"},
		// Mutability.
		{"replace id", `[{"op":"replace","path":"id","value":"mine"}]`, "mutability", "id"},
		{"remove meta", `[{"op":"remove","path":"meta"}]`, "mutability", "meta"},
		{"replace meta.version", `[{"op":"replace","path":"meta.version","value":"W/\"7\""}]`, "mutability", "meta.version"},
		{"add groups", `[{"op":"add","path":"groups","value":[{"value":"g"}]}]`, "mutability", "groups"},
		{"manager displayName", `[{"op":"replace","path":"` + enterprise + `:manager.displayName","value":"Boss"}]`, "mutability", "manager.displayName"},
		{"remove userName", `[{"op":"remove","path":"userName"}]`, "mutability", "userName"},
		{"pathless id change", `[{"op":"replace","value":{"id":"other","displayName":"x"}}]`, "mutability", "id"},
		// Values.
		{"boolean as a string", `[{"op":"replace","path":"active","value":"False"}]`, "invalidValue", "active"},
		{"string as a number", `[{"op":"replace","path":"displayName","value":7}]`, "invalidValue", "displayName"},
		{"blank userName", `[{"op":"replace","path":"userName","value":""}]`, "invalidValue", "userName"},
		{"complex as a string", `[{"op":"replace","path":"name","value":"Ann Lee"}]`, "invalidValue", "name"},
		{"unknown sub-attribute in a value", `[{"op":"add","path":"name","value":{"nick":"A"}}]`, "invalidValue", "nick"},
		{"multi-valued element as a string", `[{"op":"add","path":"emails","value":"a@x"}]`, "invalidValue", "emails"},
		{"sub-attribute value of the wrong type", `[{"op":"replace","path":"emails[type eq \"work\"].primary","value":"yes"}]`, "invalidValue", "primary"},
		{"filtered replace with a string", `[{"op":"replace","path":"emails[type eq \"work\"]","value":"a@x"}]`, "invalidValue", "emails"},
		{"extension attribute of the wrong type", `[{"op":"replace","path":"` + custom + `:office","value":["Lyon"]}]`, "invalidValue", "office"},
		{"pathless value not an object", `[{"op":"replace","value":"x"}]`, "invalidValue", "object"},
		{"pathless unknown attribute", `[{"op":"replace","value":{"shoeSize":"42"}}]`, "invalidValue", "shoeSize"},
		{"pathless undeclared extension", `[{"op":"add","value":{"urn:acme:x:2.0:User":{"x":"y"}}}]`, "invalidValue", "urn:acme"},
		{"pathless undeclared extension attribute", `[{"op":"add","value":{"` + custom + `":{"shoeSize":"42"}}}]`, "invalidValue", "shoeSize"},
		{"pathless extension not an object", `[{"op":"add","value":{"` + custom + `":"Lyon"}}]`, "invalidValue", custom},
		{"pathless URN-qualified attribute", `[{"op":"replace","value":{"` + enterprise + `:department":"x"}}]`, "invalidValue", "department"},
		{"pathless multi-valued as an object", `[{"op":"add","value":{"emails":{"value":"a@x"}}}]`, "invalidValue", "emails"},
		{"pathless wrong type", `[{"op":"replace","value":{"active":"yes"}}]`, "invalidValue", "active"},
		// All or nothing: a valid first operation is undone by a rejected second one.
		{"second operation rejected", `[{"op":"replace","path":"displayName","value":"Changed"},{"op":"remove","path":"` + custom + `"}]`, "invalidPath", "operation 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := patchUser(t, s, id, c.ops)
			wantError(t, status, out, http.StatusBadRequest, c.scimType, c.detailHas)
			if u := user(t, s, id); u.Version != 1 || u.DisplayName != "Ann" || u.Extensions[custom]["office"] != "Lyon" {
				t.Fatalf("user changed by a rejected PATCH: %+v", u)
			}
		})
	}
	status, out := call(t, s, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":5}]}`)
	wantError(t, status, out, http.StatusBadRequest, "invalidSyntax", "JSON")
}

func TestPatchAcceptsEveryPathForm(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"name":{"givenName":"Ann","familyName":"Lee"},
		"emails":[{"value":"ann@example.com","type":"work","primary":true},{"value":"ann@home.example","type":"home"}]`)
	steps := []struct {
		name, ops string
		check     func(u scimsandbox.User) bool
	}{
		{"attr", `[{"op":"replace","path":"displayName","value":"Ann Lee"}]`,
			func(u scimsandbox.User) bool { return u.DisplayName == "Ann Lee" }},
		{"attr.sub", `[{"op":"replace","path":"name.givenName","value":"Anne"}]`,
			func(u scimsandbox.User) bool { return u.GivenName == "Anne" && u.FamilyName == "Lee" }},
		{"urn:core:attr", `[{"op":"replace","path":"` + coreUser + `:title","value":"Boss"}]`,
			func(u scimsandbox.User) bool { return true }},
		{"urn:core:attr.sub", `[{"op":"replace","path":"` + strings.ToLower(coreUser) + `:name.familyName","value":"Li"}]`,
			func(u scimsandbox.User) bool { return u.FamilyName == "Li" }},
		{"urn:ext:attr", `[{"op":"add","path":"` + enterprise + `:department","value":"Sales"}]`,
			func(u scimsandbox.User) bool { return u.Extensions[enterprise]["department"] == "Sales" }},
		{"urn:ext:attr.sub", `[{"op":"add","path":"` + enterprise + `:manager.value","value":"m1"}]`,
			func(u scimsandbox.User) bool {
				return reflect.DeepEqual(u.Extensions[enterprise]["manager"], map[string]any{"value": "m1"})
			}},
		{"urn:custom:attr, URN in another case", `[{"op":"add","path":"` + strings.ToUpper(custom) + `:Office","value":"Lyon"}]`,
			func(u scimsandbox.User) bool { return u.Extensions[custom]["office"] == "Lyon" }},
		{"attr[filter]", `[{"op":"replace","path":"emails[type eq \"home\"]","value":{"value":"ann@new.example","type":"home"}}]`,
			func(u scimsandbox.User) bool {
				return reflect.DeepEqual(u.Emails, []string{"ann@example.com", "ann@new.example"})
			}},
		{"attr[filter].sub", `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"lee@example.com"}]`,
			func(u scimsandbox.User) bool {
				return reflect.DeepEqual(u.Emails, []string{"lee@example.com", "ann@new.example"})
			}},
		{"single value for a multi-valued path", `[{"op":"add","path":"roles","value":{"value":"Member"}}]`,
			func(u scimsandbox.User) bool { return reflect.DeepEqual(u.Roles, []string{"Member"}) }},
		{"no path, with an extension URN key", `[{"op":"replace","value":{"nickName":"Annie","` + strings.ToLower(enterprise) + `":{"Division":"EMEA"}}}]`,
			func(u scimsandbox.User) bool {
				return u.Extensions[enterprise]["division"] == "EMEA" && u.Extensions[enterprise]["department"] == "Sales"
			}},
		{"no path ignores readOnly", `[{"op":"add","value":{"id":"` + id + `","meta":{"version":"x"},"schemas":["` + coreUser + `"],"displayName":"A"}}]`,
			func(u scimsandbox.User) bool { return u.DisplayName == "A" }},
		{"remove urn:custom:attr, the extension goes with its last attribute", `[{"op":"remove","path":"` + custom + `:office"}]`,
			func(u scimsandbox.User) bool { _, has := u.Extensions[custom]; return !has }},
		{"remove an absent attribute is a no-op", `[{"op":"remove","path":"` + custom + `:settingsTemplate"},{"op":"remove","path":"phoneNumbers"}]`,
			func(u scimsandbox.User) bool { _, has := u.Extensions[custom]; return !has }},
		{"remove attr[filter]", `[{"op":"remove","path":"emails[value eq \"ann@new.example\"]"}]`,
			func(u scimsandbox.User) bool { return reflect.DeepEqual(u.Emails, []string{"lee@example.com"}) }},
		{"op names are case-insensitive", `[{"op":"ADD","path":"entitlements","value":[{"value":"Meeting"}]}]`,
			func(u scimsandbox.User) bool { return reflect.DeepEqual(u.Entitlements, []string{"Meeting"}) }},
	}
	for _, st := range steps {
		status, out := patchUser(t, s, id, st.ops)
		mustStatus(t, http.StatusOK, status, out)
		if u := user(t, s, id); !st.check(u) {
			t.Fatalf("%s: user = %+v", st.name, u)
		}
	}
	status, out := call(t, s, "GET", "/Users/"+id, "")
	mustStatus(t, http.StatusOK, status, out)
	if out["title"] != "Boss" || out["nickName"] != "Annie" || out["id"] != id {
		t.Fatalf("user = %v", out)
	}
}

func TestPatchMakingAValuePrimaryDemotesTheOthers(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"emails":[{"value":"home@x","type":"home"},{"value":"work@x","type":"work","primary":true}]`)
	status, out := patchUser(t, s, id, `[{"op":"replace","path":"emails[type eq \"home\"].primary","value":true}]`)
	mustStatus(t, http.StatusOK, status, out)
	emails := out["emails"].([]any)
	if emails[0].(map[string]any)["primary"] != true || emails[1].(map[string]any)["primary"] != false {
		t.Fatalf("emails = %v, want home primary and work demoted", emails)
	}
}

func TestGroupPatchPaths(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	a := createUser(t, s, "a@example.com", "")
	status, out := call(t, s, "POST", "/Groups", `{"schemas":["`+coreGroup+`"],"displayName":"Sales","members":[{"value":"`+a+`"}]}`)
	mustStatus(t, http.StatusCreated, status, out)
	gid := out["id"].(string)
	patch := func(ops string) (int, map[string]any) {
		return call(t, s, "PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+ops+`}`)
	}
	for _, c := range []struct{ name, ops, scimType, detailHas string }{
		{"user extension path", `[{"op":"add","path":"` + enterprise + `:department","value":"x"}]`, "invalidPath", enterprise},
		{"unknown member sub-attribute", `[{"op":"replace","path":"members[value eq \"` + a + `\"].role","value":"x"}]`, "invalidPath", "role"},
		{"filter on an unknown sub-attribute", `[{"op":"remove","path":"members[userName eq \"a\"]"}]`, "invalidPath", "userName"},
		{"remove displayName", `[{"op":"remove","path":"displayName"}]`, "mutability", "displayName"},
		{"members element as a string", `[{"op":"add","path":"members","value":["` + a + `"]}]`, "invalidValue", "members[0]"},
		{"bare Group URN", `[{"op":"remove","path":"` + coreGroup + `"}]`, "invalidPath", coreGroup},
	} {
		status, out := patch(c.ops)
		wantError(t, status, out, http.StatusBadRequest, c.scimType, c.detailHas)
	}
	if got := s.GroupMembers("Sales"); !reflect.DeepEqual(got, []string{a}) {
		t.Fatalf("members = %v", got)
	}
	// Removing a member that is not there stays a no-op (204), unlike other filters that
	// match nothing: a retried removal must not fail.
	status, out = patch(`[{"op":"remove","path":"members[value eq \"not-a-member\"]"}]`)
	mustStatus(t, http.StatusNoContent, status, out)
	status, out = patch(`[{"op":"replace","path":"` + coreGroup + `:displayName","value":"Sales EMEA"},{"op":"add","path":"members","value":{"value":"` + a + `"}}]`)
	mustStatus(t, http.StatusNoContent, status, out)
	if got := s.GroupMembers("Sales EMEA"); !reflect.DeepEqual(got, []string{a}) {
		t.Fatalf("members = %v", got)
	}
}

func TestCustomSchemaOptions(t *testing.T) {
	const acme = "urn:acme:params:scim:schemas:extension:acme:1.0:User"
	schemaIDs := func(s *scimsandbox.Server) []string {
		status, out := call(t, s, "GET", "/Schemas", "")
		mustStatus(t, http.StatusOK, status, out)
		var ids []string
		for _, r := range out["Resources"].([]any) {
			ids = append(ids, r.(map[string]any)["id"].(string))
		}
		return ids
	}
	extensions := func(s *scimsandbox.Server) []string {
		status, out := call(t, s, "GET", "/ResourceTypes/User", "")
		mustStatus(t, http.StatusOK, status, out)
		var ids []string
		list, _ := out["schemaExtensions"].([]any)
		for _, e := range list {
			ids = append(ids, e.(map[string]any)["schema"].(string))
		}
		return ids
	}
	attrNames := func(s *scimsandbox.Server, urn string) []string {
		status, out := call(t, s, "GET", "/Schemas/"+urn, "")
		mustStatus(t, http.StatusOK, status, out)
		var names []string
		for _, a := range out["attributes"].([]any) {
			m := a.(map[string]any)
			if m["type"] != "string" || m["multiValued"] != false || m["mutability"] != "readWrite" {
				t.Fatalf("custom attribute %v", m)
			}
			names = append(names, m["name"].(string))
		}
		return names
	}

	def := scimsandbox.New(scimsandbox.Options{Token: token})
	if got := extensions(def); !reflect.DeepEqual(got, []string{enterprise, custom}) {
		t.Fatalf("default extensions = %v", got)
	}
	if got := attrNames(def, custom); !reflect.DeepEqual(got, scimsandbox.DefaultCustomAttributes()) {
		t.Fatalf("default custom attributes = %v", got)
	}

	s := scimsandbox.New(scimsandbox.Options{Token: token, CustomSchema: acme, CustomAttributes: []string{"badge", "floor"}})
	if got := extensions(s); !reflect.DeepEqual(got, []string{enterprise, acme}) {
		t.Fatalf("extensions = %v", got)
	}
	if got := schemaIDs(s); !reflect.DeepEqual(got, []string{coreUser, coreGroup, enterprise, acme}) {
		t.Fatalf("schemas = %v", got)
	}
	if got := attrNames(s, acme); !reflect.DeepEqual(got, []string{"badge", "floor"}) {
		t.Fatalf("acme attributes = %v", got)
	}
	id := createUser(t, s, "ann@example.com", `,"schemas":["`+coreUser+`","`+acme+`"],"`+acme+`":{"badge":"7"}`)
	status, out := patchUser(t, s, id, `[{"op":"replace","path":"`+acme+`:floor","value":"3"}]`)
	mustStatus(t, http.StatusOK, status, out)
	if ext := user(t, s, id).Extensions[acme]; ext["badge"] != "7" || ext["floor"] != "3" {
		t.Fatalf("acme = %v", ext)
	}
	status, out = patchUser(t, s, id, `[{"op":"replace","path":"`+acme+`:office","value":"Lyon"}]`)
	wantError(t, status, out, http.StatusBadRequest, "invalidPath", "office")
	status, out = patchUser(t, s, id, `[{"op":"replace","path":"`+custom+`:office","value":"Lyon"}]`)
	wantError(t, status, out, http.StatusBadRequest, "invalidPath", custom)

	none := scimsandbox.New(scimsandbox.Options{Token: token, CustomSchema: scimsandbox.NoCustomSchema})
	if got := extensions(none); !reflect.DeepEqual(got, []string{enterprise}) {
		t.Fatalf("extensions without custom schema = %v", got)
	}
	if got := schemaIDs(none); len(got) != 3 {
		t.Fatalf("schemas without custom schema = %v", got)
	}
	status, out = call(t, none, "POST", "/Users", `{"schemas":["`+coreUser+`","`+custom+`"],"userName":"a@x","`+custom+`":{"office":"Lyon"}}`)
	wantError(t, status, out, http.StatusBadRequest, "invalidValue", custom)

	empty := scimsandbox.New(scimsandbox.Options{Token: token, CustomAttributes: []string{}})
	if got := extensions(empty); !reflect.DeepEqual(got, []string{enterprise, custom}) {
		t.Fatalf("extensions with no custom attributes = %v", got)
	}
	status, out = call(t, empty, "POST", "/Users", `{"schemas":["`+coreUser+`","`+custom+`"],"userName":"a@x","`+custom+`":{"office":"Lyon"}}`)
	wantError(t, status, out, http.StatusBadRequest, "invalidValue", "office")
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []scimsandbox.Options{
		{}, {CustomSchema: "none"}, {CustomSchema: "NONE"}, {CustomSchema: "urn:acme:ext:User", CustomAttributes: []string{"a", "b_c", "d-1"}},
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, o := range []scimsandbox.Options{
		{CustomSchema: "acme"}, {CustomSchema: "urn:acme:"}, {CustomSchema: "urn:acme:a b"},
		{CustomSchema: enterprise}, {CustomSchema: strings.ToLower(coreUser)}, {CustomSchema: coreUser + ":x"},
		{CustomAttributes: []string{"office", "Office"}}, {CustomAttributes: []string{"1st"}},
		{CustomAttributes: []string{"a.b"}}, {CustomAttributes: []string{""}},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted invalid options")
		}
	}()
	scimsandbox.New(scimsandbox.Options{CustomSchema: "acme"})
}
