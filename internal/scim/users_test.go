package scim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
)

const (
	enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	customURN     = "urn:usersync:params:scim:schemas:extension:custom:2.0:User"
)

func desired() plan.Desired {
	return plan.Desired{
		ExternalID: "0f1e2d3c-guid-ann", UserName: "ann@example.com", Email: "ann@example.com",
		GivenName: "Ann", FamilyName: "Lee", DisplayName: "Ann Lee", Active: true,
		Role: "Member", Products: []string{"Webinar", "Meeting"},
		UserGroup: "Sales", DeviceGroups: []string{"DG-A"}, SettingsTemplate: "T3",
		Enterprise: map[string]string{"department": "Sales", "costCenter": ""},
		Custom:     map[string]string{"region": "EMEA"},
	}
}

func TestCreateUserSendsEverythingInOneRequest(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	u, err := e.client.CreateUser(ctx, ext, desired())
	if err != nil {
		t.Fatal(err)
	}
	reqs := e.rec.take()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/Users" {
		t.Fatalf("requests = %+v, want one POST /Users", reqs)
	}
	if reqs[0].Auth != "Bearer "+token || reqs[0].ContentType != "application/scim+json" {
		t.Fatalf("headers: Authorization %q Content-Type %q", reqs[0].Auth, reqs[0].ContentType)
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if _, has := body[enterpriseURN].(map[string]any)["costCenter"]; has {
		t.Fatalf("empty costCenter was sent: %s", reqs[0].Body)
	}
	for _, notUserAttr := range []string{"userGroup", "deviceGroups", "groups"} {
		if _, has := body[notUserAttr]; has {
			t.Fatalf("%s sent as a user attribute: %s", notUserAttr, reqs[0].Body)
		}
	}

	got, ok := e.sandbox.User(u.ID)
	if !ok {
		t.Fatalf("created user %s not in the sandbox", u.ID)
	}
	want := scimsandbox.User{
		ID: u.ID, ExternalID: "0f1e2d3c-guid-ann", UserName: "ann@example.com", DisplayName: "Ann Lee",
		GivenName: "Ann", FamilyName: "Lee", Emails: []string{"ann@example.com"}, Active: true,
		Entitlements: []string{"Meeting", "Webinar"}, Roles: []string{"Member"},
		Extensions: map[string]map[string]any{
			enterpriseURN: {"department": "Sales"},
			customURN:     {"region": "EMEA", "settingsTemplate": "T3"},
		},
		Version: 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sandbox user\n got %+v\nwant %+v", got, want)
	}
	// What the client reads back matches what it meant, group memberships aside.
	d := desired()
	d.UserGroup, d.DeviceGroups = "", nil
	d.Enterprise = map[string]string{"department": "Sales"}
	d.Products = []string{"Meeting", "Webinar"}
	if state := u.State(); !reflect.DeepEqual(state, d) {
		t.Fatalf("State()\n got %+v\nwant %+v", state, d)
	}
}

func TestCreateUserOmitsEmptyValues(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	_, err := e.client.CreateUser(context.Background(), ext, plan.Desired{ExternalID: "g1", UserName: "min@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.Unmarshal(e.rec.take()[0].Body, &body)
	for _, attr := range []string{"name", "displayName", "emails", "entitlements", "roles", enterpriseURN, customURN} {
		if _, has := body[attr]; has {
			t.Errorf("empty %s was sent", attr)
		}
	}
	if schemas := body["schemas"].([]any); len(schemas) != 1 {
		t.Errorf("schemas = %v, want only the core schema", schemas)
	}
}

func TestFindUserByExternalIDAndUserName(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	created, err := e.client.CreateUser(ctx, ext, desired())
	if err != nil {
		t.Fatal(err)
	}
	other := desired()
	other.ExternalID, other.UserName, other.Email = "guid-bob", "bob@example.com", "bob@example.com"
	if _, err := e.client.CreateUser(ctx, ext, other); err != nil {
		t.Fatal(err)
	}

	u, err := e.client.FindUserByExternalID(ctx, ext, "0f1e2d3c-guid-ann")
	if err != nil || u == nil || u.ID != created.ID || u.UserName != "ann@example.com" {
		t.Fatalf("FindUserByExternalID = %+v, %v", u, err)
	}
	u, err = e.client.FindUserByUserName(ctx, ext, "ANN@example.com")
	if err != nil || u == nil || u.ID != created.ID {
		t.Fatalf("FindUserByUserName = %+v, %v", u, err)
	}
	u, err = e.client.FindUserByExternalID(ctx, ext, "no-such-guid")
	if err != nil || u != nil {
		t.Fatalf("unknown externalId: %+v, %v; want nil, nil", u, err)
	}
}

func TestFilterValuesWithQuotesAreEscaped(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	d := plan.Desired{ExternalID: `id"with\quote`, UserName: `o"brien\x&y+z@example.com`, Active: true}
	created, err := e.client.CreateUser(ctx, ext, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateUser(ctx, ext, plan.Desired{ExternalID: "plain", UserName: "plain@example.com", Active: true}); err != nil {
		t.Fatal(err)
	}
	if u, err := e.client.FindUserByExternalID(ctx, ext, d.ExternalID); err != nil || u == nil || u.ID != created.ID {
		t.Fatalf("by externalId: %+v, %v", u, err)
	}
	if u, err := e.client.FindUserByUserName(ctx, ext, d.UserName); err != nil || u == nil || u.ID != created.ID {
		t.Fatalf("by userName: %+v, %v", u, err)
	}
	// Unescaped, this value would turn into a filter matching every user.
	if u, err := e.client.FindUserByExternalID(ctx, ext, `x" or userName pr or externalId eq "`); err != nil || u != nil {
		t.Fatalf("injection value matched: %+v, %v", u, err)
	}
}

func TestUpdateSendsOnePatchWithOnlyChangedAttributes(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	u, err := e.client.CreateUser(ctx, ext, desired())
	if err != nil {
		t.Fatal(err)
	}
	e.rec.take()
	e.sandbox.ResetStats()

	d := desired()
	d.DisplayName = "Ann Lee-Smith"
	d.Products = []string{"Meeting"}
	d.UserGroup = "Support" // a membership: not a user attribute
	if err := e.client.UpdateUser(ctx, ext, u.ID, desired(), d); err != nil {
		t.Fatal(err)
	}
	reqs := e.rec.take()
	if len(reqs) != 1 || reqs[0].Method != "PATCH" || reqs[0].Path != "/Users/"+u.ID {
		t.Fatalf("requests = %+v, want one PATCH /Users/%s", reqs, u.ID)
	}
	if got, want := opSummary(patchOps(t, reqs[0])), []string{"replace displayName", "replace entitlements"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("operations = %v, want %v", got, want)
	}
	if st := e.sandbox.Stats(); st.Requests != 1 || st.Writes != 1 {
		t.Fatalf("sandbox stats = %+v", st)
	}
	got, _ := e.sandbox.User(u.ID)
	if got.DisplayName != "Ann Lee-Smith" || !reflect.DeepEqual(got.Entitlements, []string{"Meeting"}) ||
		got.GivenName != "Ann" || got.Roles[0] != "Member" {
		t.Fatalf("sandbox user after update: %+v", got)
	}
}

func TestUpdateWithNothingToSendSendsNothing(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	groupsOnly := desired()
	groupsOnly.UserGroup, groupsOnly.DeviceGroups = "Other", []string{"DG-9"}
	for _, to := range []plan.Desired{desired(), groupsOnly} {
		if err := e.client.UpdateUser(ctx, ext, "any-id", desired(), to); err != nil {
			t.Fatalf("to %+v: %v", to, err)
		}
	}
	if n := e.client.Requests(); n != 0 {
		t.Fatalf("%d requests sent, want 0", n)
	}
}

func TestUpdateClearsRemovedValues(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	u, err := e.client.CreateUser(ctx, ext, desired())
	if err != nil {
		t.Fatal(err)
	}
	d := desired()
	d.DisplayName = ""
	d.GivenName = "Anne"
	d.Enterprise = map[string]string{"division": "North"}
	d.Custom = map[string]string{"site": "Oslo"} // region dropped, settingsTemplate kept
	if err := e.client.UpdateUser(ctx, ext, u.ID, desired(), d); err != nil {
		t.Fatal(err)
	}
	got, _ := e.sandbox.User(u.ID)
	if got.DisplayName != "" || got.GivenName != "Anne" || got.FamilyName != "Lee" {
		t.Fatalf("names after update: %+v", got)
	}
	if want := map[string]any{"division": "North"}; !reflect.DeepEqual(got.Extensions[enterpriseURN], want) {
		t.Fatalf("enterprise = %v, want %v", got.Extensions[enterpriseURN], want)
	}
	if want := map[string]any{"site": "Oslo", "settingsTemplate": "T3"}; !reflect.DeepEqual(got.Extensions[customURN], want) {
		t.Fatalf("custom = %v, want %v", got.Extensions[customURN], want)
	}
	read, err := e.client.GetUser(ctx, ext, u.ID)
	if err != nil || read.Custom["site"] != "Oslo" || read.SettingsTemplate != "T3" || read.Enterprise["division"] != "North" {
		t.Fatalf("GetUser = %+v, %v", read, err)
	}
}

func TestSuspensionKeepsTheAccountAndReactivationReusesIt(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{Seats: map[string]int{"Meeting": 1}}, scim.Config{})
	ctx := context.Background()
	u, err := e.client.CreateUser(ctx, ext, desired())
	if err != nil {
		t.Fatal(err)
	}
	off := desired()
	off.Active, off.Products, off.Role = false, nil, ""
	if err := e.client.UpdateUser(ctx, ext, u.ID, desired(), off); err != nil {
		t.Fatal(err)
	}
	got, ok := e.sandbox.User(u.ID)
	if !ok || got.Active || got.Entitlements != nil || got.Roles != nil || got.UserName != "ann@example.com" {
		t.Fatalf("suspended user = %+v (exists %v)", got, ok)
	}
	if used := e.sandbox.SeatsUsed()["Meeting"]; used != 0 {
		t.Fatalf("suspended user still holds %d Meeting seat", used)
	}

	// Its seat can go to someone else; then the seat is gone for the suspended user.
	other := plan.Desired{ExternalID: "g2", UserName: "bob@example.com", Active: true, Products: []string{"Meeting"}}
	bob, err := e.client.CreateUser(ctx, ext, other)
	if err != nil {
		t.Fatal(err)
	}
	bobOff := other
	bobOff.Active, bobOff.Products = false, nil
	if err := e.client.UpdateUser(ctx, ext, bob.ID, other, bobOff); err != nil {
		t.Fatal(err)
	}
	if err := e.client.UpdateUser(ctx, ext, u.ID, off, desired()); err != nil {
		t.Fatal(err)
	}
	got, _ = e.sandbox.User(u.ID)
	if !got.Active || !reflect.DeepEqual(got.Entitlements, []string{"Meeting", "Webinar"}) || len(e.sandbox.Users()) != 2 {
		t.Fatalf("reactivated user = %+v", got)
	}
	if n := e.sandbox.Stats().Count("DELETE", "/Users/{id}"); n != 0 {
		t.Fatalf("%d DELETE requests, want none", n)
	}
}

func TestCreateOfATakenUserNameIsAConflict(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	if err := e.sandbox.SeedExisting("ann@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.CreateUser(context.Background(), ext, desired())
	if !scim.IsConflict(err) || scim.IsRejected(err) || scim.IsRetryable(err) {
		t.Fatalf("err = %v: IsConflict %v IsRejected %v IsRetryable %v", err, scim.IsConflict(err), scim.IsRejected(err), scim.IsRetryable(err))
	}
	if n := len(e.sandbox.Users()); n != 1 {
		t.Fatalf("%d users, want the seeded one only", n)
	}
}

func TestRetriedCreateReturnsTheSameAccount(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	first, err := e.client.CreateUser(ctx, ext, desired())
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.client.CreateUser(ctx, ext, desired())
	if err != nil || second.ID != first.ID {
		t.Fatalf("second create = %+v, %v; want account %s", second, err, first.ID)
	}
	if n := len(e.sandbox.Users()); n != 1 {
		t.Fatalf("%d users after a retried create, want 1", n)
	}
}

func TestSeatLimitIsRejectedAndNamesTheProduct(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{Seats: map[string]int{"Webinar": 0}}, scim.Config{})
	_, err := e.client.CreateUser(context.Background(), ext, desired())
	var se *scim.Error
	if !scim.IsRejected(err) || scim.IsRetryable(err) || !errorsAs(err, &se) || se.Status != http.StatusForbidden ||
		!strings.Contains(err.Error(), "Webinar") {
		t.Fatalf("err = %v, want a 403 rejection naming Webinar", err)
	}
	if n := e.client.Requests(); n != 1 {
		t.Fatalf("%d requests: a rejection must not be retried", n)
	}
	if len(e.sandbox.Users()) != 0 {
		t.Fatal("rejected create stored a user")
	}
}
