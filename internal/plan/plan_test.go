package plan

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/vocab"
)

const (
	admins = "cn=admins,ou=groups,dc=example,dc=com"
	staff  = "cn=staff,ou=groups,dc=example,dc=com"
	guests = "cn=guests,ou=groups,dc=example,dc=com"
)

// testRules: admins (priority 1) get Admin + Meeting + Webinar; staff (2) Member + Meeting.
func testRules() []rules.Rule {
	return []rules.Rule{
		{ID: 2, Priority: 2, GroupDN: staff, Role: "Member", Products: []string{"Meeting"}, UserGroup: "Staff"},
		{ID: 1, Priority: 1, GroupDN: admins, Role: "Admin", Products: []string{"Meeting", "Webinar"}},
	}
}

func user(id, name string, groups ...string) directory.User {
	return directory.User{ExternalID: id, UserName: name + "@example.com", Email: name + "@example.com",
		GivenName: name, Groups: groups}
}

// applied returns the applied state equal to what Plan would build for u now.
func applied(t *testing.T, u directory.User) Applied {
	t.Helper()
	a, ok := rules.Resolve(testRules(), u.Groups)
	if !ok {
		t.Fatalf("user %s matches no rule", u.UserName)
	}
	return Applied{ExternalID: u.ExternalID, ScimID: "scim-" + u.ExternalID, State: Build(u, a, nil)}
}

func baseInput(users ...directory.User) Input {
	return Input{
		Users:            users,
		Rules:            testRules(),
		ValidatedDomains: map[string]bool{"example.com": true},
		Applied:          map[string]Applied{},
		Failed:           map[string]vocab.Failure{},
		Seats:            map[string]int{"Meeting": 100, "Webinar": 100},
		Held:             map[string]map[string]bool{},
	}
}

func hold(in *Input, id string, products ...string) {
	for _, p := range products {
		if in.Held[p] == nil {
			in.Held[p] = map[string]bool{}
		}
		in.Held[p][id] = true
	}
}

func link(t *testing.T, in *Input, u directory.User) {
	t.Helper()
	ap := applied(t, u)
	in.Applied[u.ExternalID] = ap
	hold(in, u.ExternalID, ap.State.Products...)
}

func itemFor(t *testing.T, res Result, id string) Item {
	t.Helper()
	for _, it := range res.Items {
		if it.ExternalID == id {
			return it
		}
	}
	t.Fatalf("no item for %s in %+v", id, res.Items)
	return Item{}
}

func hasItem(res Result, id string) bool {
	return slices.ContainsFunc(res.Items, func(it Item) bool { return it.ExternalID == id })
}

func TestPlanCreateUpdateUnchanged(t *testing.T) {
	newUser := user("g-new", "nina", staff)
	same := user("g-same", "sam", staff)
	changed := user("g-chg", "carl", staff)
	failedSame := user("g-fs", "fay", staff)
	in := baseInput(newUser, same, changed, failedSame)
	link(t, &in, same)
	link(t, &in, changed)
	link(t, &in, failedSame)
	in.Failed["g-fs"] = vocab.Failure{Type: vocab.TargetUnavailable, Message: "503"}
	in.Users[2].Groups = []string{admins} // carl became an admin since the last sync
	res := Plan(in)

	if res.InScope != 4 || res.Unchanged != 1 {
		t.Errorf("InScope=%d Unchanged=%d, want 4 and 1", res.InScope, res.Unchanged)
	}
	if hasItem(res, "g-same") {
		t.Error("unchanged linked user got an item")
	}
	c := itemFor(t, res, "g-new")
	if c.Action != Create || !reflect.DeepEqual(c.NewSeats, []string{"Meeting"}) || c.Desired.Role != "Member" || !c.Desired.Active {
		t.Errorf("new user item = %+v, want create, Member, NewSeats [Meeting]", c)
	}
	u := itemFor(t, res, "g-chg")
	if u.Action != Update || !reflect.DeepEqual(u.Changed, []string{"products", "role", "userGroup"}) {
		t.Errorf("changed user: action %s changed %v, want update [products role userGroup]", u.Action, u.Changed)
	}
	if !reflect.DeepEqual(u.NewSeats, []string{"Webinar"}) || u.ReleaseSeats != nil {
		t.Errorf("changed user seats: new %v release %v, want new [Webinar]", u.NewSeats, u.ReleaseSeats)
	}
	f := itemFor(t, res, "g-fs")
	if f.Action != Update || len(f.Changed) != 0 {
		t.Errorf("failed user with applied == desired: %+v, want update with no changed fields", f)
	}
	// Items are sorted by lower-case userName.
	var names []string
	for _, it := range res.Items {
		names = append(names, it.UserName)
	}
	if !slices.IsSorted(names) {
		t.Errorf("items not sorted: %v", names)
	}
}

func TestPlanReactivation(t *testing.T) {
	u := user("g1", "rita", staff)
	in := baseInput(u)
	ap := applied(t, u)
	ap.State = Desired{ExternalID: "g1", UserName: u.UserName, Email: u.Email, GivenName: "rita", Active: false}
	in.Applied["g1"] = ap
	it := itemFor(t, Plan(in), "g1")
	if it.Action != Update || !slices.Contains(it.Changed, "active") || !it.Desired.Active {
		t.Errorf("reactivation = %+v, want update with active changed", it)
	}
	if !reflect.DeepEqual(it.NewSeats, []string{"Meeting"}) {
		t.Errorf("reactivated user NewSeats = %v, want [Meeting]", it.NewSeats)
	}
}

func TestPlanProductRemovedReleasesSeat(t *testing.T) {
	u := user("g1", "ali", admins)
	in := baseInput(u)
	link(t, &in, u)
	in.Users[0].Groups = []string{staff}
	it := itemFor(t, Plan(in), "g1")
	if it.Action != Update || !reflect.DeepEqual(it.ReleaseSeats, []string{"Webinar"}) || it.NewSeats != nil {
		t.Errorf("item = %+v, want update releasing [Webinar]", it)
	}
}

func TestPlanGroupDNsCompareNormalized(t *testing.T) {
	u := user("g1", "ann", "CN=Staff, OU=Groups,DC=Example,DC=com")
	in := baseInput(u)
	in.Rules[0].GroupDN = "cn=STAFF,ou=groups,dc=example,dc=com"
	res := Plan(in)
	if res.InScope != 1 || itemFor(t, res, "g1").Action != Create {
		t.Errorf("differently written DNs did not match: %+v", res)
	}
}

func TestPlanCheckFailures(t *testing.T) {
	bad := user("g1", "bob", staff)
	bad.Email = "bob"
	foreign := user("g2", "fred", staff)
	foreign.Email = "fred@other.net"
	in := baseInput(bad, foreign)
	link(t, &in, foreign) // a linked user failing a check is not suspended, not updated
	res := Plan(in)
	if it := itemFor(t, res, "g1"); it.Action != Fail || it.Failure.Type != vocab.InvalidUserData || !strings.Contains(it.Failure.Message, `"bob"`) {
		t.Errorf("bad email: %+v", it)
	}
	it := itemFor(t, res, "g2")
	if it.Action != Fail || it.Failure.Type != vocab.DomainNotValidated || !strings.Contains(it.Failure.Message, `"other.net"`) {
		t.Errorf("foreign domain: %+v", it)
	}
	if it.NewSeats != nil || it.ReleaseSeats != nil {
		t.Errorf("failed user moves seats: %+v", it)
	}
	if res.InScope != 2 || len(res.Items) != 2 {
		t.Errorf("InScope=%d items=%d, want 2 and 2", res.InScope, len(res.Items))
	}
}

func TestPlanSuspension(t *testing.T) {
	gone := user("g-gone", "gus", admins)
	off := user("g-off", "olga", staff)
	left := user("g-left", "lea", staff)
	stay := user("g-stay", "stan", staff)
	asleep := user("g-asleep", "abe", staff)
	in := baseInput(off, left, stay)
	for _, u := range []directory.User{gone, off, left, stay, asleep} {
		link(t, &in, u)
	}
	ap := in.Applied["g-asleep"] // already suspended earlier: nothing more to do
	ap.State.Active = false
	in.Applied["g-asleep"] = ap
	in.Users[0].Disabled = true
	in.Users[1].Groups = []string{guests} // no rule
	in.Users = append(in.Users, user("g-x1", "x1", staff), user("g-x2", "x2", staff))
	in.ApproveSuspensions = true // the threshold is tested elsewhere
	in.Applied["g-gone"] = func() Applied {
		a := in.Applied["g-gone"]
		a.State.Enterprise = map[string]string{"department": "R&D"}
		return a
	}()

	res := Plan(in)
	for _, id := range []string{"g-gone", "g-off", "g-left"} {
		it := itemFor(t, res, id)
		if it.Action != Suspend {
			t.Errorf("%s: action %s, want suspend", id, it.Action)
		}
		d := it.Desired
		if d.Active || d.Role != "" || d.Products != nil || d.UserGroup != "" || d.DeviceGroups != nil || d.SettingsTemplate != "" {
			t.Errorf("%s: suspended state keeps access: %+v", id, d)
		}
		if d.UserName == "" || d.Email == "" || d.ExternalID != id {
			t.Errorf("%s: suspended state lost identity: %+v", id, d)
		}
		if !slices.Contains(it.Changed, "active") {
			t.Errorf("%s: changed %v lacks active", id, it.Changed)
		}
	}
	gus := itemFor(t, res, "g-gone")
	if !reflect.DeepEqual(gus.ReleaseSeats, []string{"Meeting", "Webinar"}) {
		t.Errorf("suspension releases %v, want [Meeting Webinar]", gus.ReleaseSeats)
	}
	if gus.Desired.Enterprise["department"] != "R&D" {
		t.Errorf("suspension dropped enterprise data: %+v", gus.Desired)
	}
	if hasItem(res, "g-stay") || hasItem(res, "g-asleep") {
		t.Errorf("unexpected items: %+v", res.Items)
	}
}

func TestPlanResolved(t *testing.T) {
	in := baseInput(user("g-in", "ivy", staff), user("g-off", "otto", staff))
	in.Users[1].Disabled = true
	in.Failed["g-off"] = vocab.Failure{Type: vocab.DomainNotValidated}         // disabled, never linked
	in.Failed["g-gone"] = vocab.Failure{Type: vocab.ExistingAccount}           // vanished, never linked
	in.Failed["g-in"] = vocab.Failure{Type: vocab.OutOfLicenses, Product: "M"} // still in scope: re-planned
	in.Failed["g-susp"] = vocab.Failure{Type: vocab.TargetRejected}            // linked and already inactive
	in.Applied["g-susp"] = Applied{ExternalID: "g-susp", State: Desired{ExternalID: "g-susp", UserName: "s@example.com"}}
	res := Plan(in)
	if want := []string{"g-gone", "g-off", "g-susp"}; !reflect.DeepEqual(res.Resolved, want) {
		t.Errorf("Resolved = %v, want %v", res.Resolved, want)
	}
	if itemFor(t, res, "g-in").Action != Create {
		t.Error("failed in-scope user not re-planned")
	}
}

func TestPlanLicenseShortageIsDeterministic(t *testing.T) {
	// 1 free Webinar seat (4 bought, 3 held). Candidates: admins (priority 1), served by
	// lower-case name (not byte order, not externalId order).
	in := baseInput()
	in.Seats["Webinar"] = 4
	for i := range 3 {
		id := fmt.Sprintf("holder-%d", i)
		u := user(id, id, admins)
		in.Users = append(in.Users, u)
		link(t, &in, u)
	}
	in.Users = append(in.Users,
		user("g-1", "Zed", admins), user("g-9", "amy", admins), user("g-5", "Bea", admins))
	// A staff member only needs Meeting: unaffected by the Webinar shortage.
	in.Users = append(in.Users, user("g-sue", "sue", staff))

	want := Plan(in)
	if it := itemFor(t, want, "g-9"); it.Action != Create {
		t.Errorf("amy (first by lower-case name) = %s, want create", it.Action)
	}
	for _, id := range []string{"g-5", "g-1"} {
		it := itemFor(t, want, id)
		if it.Action != Fail || it.Failure.Type != vocab.OutOfLicenses || it.Failure.Product != "Webinar" {
			t.Fatalf("%s = %+v, want out_of_licenses for Webinar", it.UserName, it)
		}
		if it.Failure.Message != `no free seat for product "Webinar" (4 seats, all assigned)` {
			t.Errorf("message = %q", it.Failure.Message)
		}
		if it.NewSeats != nil {
			t.Errorf("failed user takes seats %v", it.NewSeats)
		}
	}
	if itemFor(t, want, "g-sue").Action != Create {
		t.Error("sue needs no Webinar seat and must be created")
	}

	rng := rand.New(rand.NewSource(7))
	for range 30 {
		shuffled := in
		shuffled.Users = slices.Clone(in.Users)
		rng.Shuffle(len(shuffled.Users), func(i, j int) {
			shuffled.Users[i], shuffled.Users[j] = shuffled.Users[j], shuffled.Users[i]
		})
		shuffled.Rules = slices.Clone(in.Rules)
		slices.Reverse(shuffled.Rules)
		if got := Plan(shuffled); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffled input gives another plan:\n got  %+v\n want %+v", got, want)
		}
	}
}

func TestPlanLicensePriorityBeatsName(t *testing.T) {
	// One Meeting seat left. "aaron" gets Meeting from the staff rule (priority 2);
	// "zoe" from the admins rule (priority 1): zoe wins although her name sorts last.
	in := baseInput(user("g-a", "aaron", staff), user("g-z", "zoe", admins))
	in.Seats = map[string]int{"Meeting": 1, "Webinar": 10}
	res := Plan(in)
	if itemFor(t, res, "g-z").Action != Create {
		t.Error("zoe (priority 1) did not get the seat")
	}
	if it := itemFor(t, res, "g-a"); it.Action != Fail || it.Failure.Product != "Meeting" {
		t.Errorf("aaron = %+v, want out_of_licenses Meeting", it)
	}
}

func TestPlanLicenseAllOrNothing(t *testing.T) {
	// Webinar is exhausted. The admin needs Meeting+Webinar: fails and takes no Meeting seat,
	// so the single Meeting seat goes to the staff member who sorts after him.
	in := baseInput(user("g-adm", "adam", admins), user("g-stf", "steve", staff))
	in.Seats = map[string]int{"Meeting": 1, "Webinar": 0}
	res := Plan(in)
	adm := itemFor(t, res, "g-adm")
	if adm.Action != Fail || adm.Failure.Product != "Webinar" {
		t.Fatalf("adam = %+v, want out_of_licenses Webinar", adm)
	}
	if adm.Failure.Message != `no free seat for product "Webinar" (no seats configured)` {
		t.Errorf("message = %q", adm.Failure.Message)
	}
	if it := itemFor(t, res, "g-stf"); it.Action != Create || !reflect.DeepEqual(it.NewSeats, []string{"Meeting"}) {
		t.Errorf("steve = %+v, want create taking the Meeting seat", it)
	}
}

func TestPlanFirstShortProductReported(t *testing.T) {
	in := baseInput(user("g1", "adam", admins))
	in.Seats = map[string]int{} // neither product has seats: report the first sorted one
	it := itemFor(t, Plan(in), "g1")
	if it.Failure == nil || it.Failure.Product != "Meeting" {
		t.Errorf("item = %+v, want out_of_licenses Meeting", it)
	}
}

func TestPlanHeldSeatsKept(t *testing.T) {
	// Seats were reduced below what is held: holders keep their seats (no failure, no
	// change), and nobody new gets one.
	a, b := user("g-a", "ann", staff), user("g-b", "ben", staff)
	in := baseInput(a, b, user("g-c", "cat", staff))
	link(t, &in, a)
	link(t, &in, b)
	in.Seats["Meeting"] = 1
	res := Plan(in)
	if res.Unchanged != 2 || hasItem(res, "g-a") || hasItem(res, "g-b") {
		t.Errorf("holders touched: unchanged=%d items=%+v", res.Unchanged, res.Items)
	}
	if it := itemFor(t, res, "g-c"); it.Action != Fail || it.Failure.Message != `no free seat for product "Meeting" (1 seats, all assigned)` {
		t.Errorf("cat = %+v", it)
	}
}

func TestPlanReleasedSeatsAreNotFreeInTheSameSync(t *testing.T) {
	leaver := user("g-l", "leo", admins)
	in := baseInput(leaver, user("g-new", "nia", admins))
	link(t, &in, leaver)
	in.Seats["Webinar"] = 1
	in.Users[0].Groups = []string{staff} // leo gives Webinar back...
	res := Plan(in)
	if it := itemFor(t, res, "g-l"); !reflect.DeepEqual(it.ReleaseSeats, []string{"Webinar"}) {
		t.Errorf("leo = %+v, want release Webinar", it)
	}
	// ...but nia only gets it next sync.
	if it := itemFor(t, res, "g-new"); it.Action != Fail || it.Failure.Type != vocab.OutOfLicenses {
		t.Errorf("nia = %+v, want out_of_licenses this sync", it)
	}
}

// goneIDs are the externalIds of suspensionInput's first k users.
func goneIDs(k int) []string {
	ids := make([]string, k)
	for i := range ids {
		ids[i] = fmt.Sprintf("g%03d", i)
	}
	return ids
}

// suspensionInput links n active staff users; the first k are absent from the read.
func suspensionInput(t *testing.T, n, k int) Input {
	in := baseInput()
	for i := range n {
		u := user(fmt.Sprintf("g%03d", i), fmt.Sprintf("u%03d", i), staff)
		link(t, &in, u)
		if i >= k {
			in.Users = append(in.Users, u)
		}
	}
	return in
}

func countActions(res Result) map[Action]int {
	m := map[Action]int{}
	for _, it := range res.Items {
		m[it.Action]++
	}
	return m
}

func TestPlanSafety(t *testing.T) {
	tests := []struct {
		name          string
		n, k          int // linked users, of which k are gone
		mutate        func(in *Input)
		wantSuspend   int
		wantHeld      int
		wantWarning   string
		wantResolved  bool
		heldMessageOK string
	}{
		{name: "10% of 100 is allowed", n: 100, k: 10, wantSuspend: 10},
		{name: "11% of 100 is held", n: 100, k: 11, wantHeld: 11, wantWarning: "would suspend 11 of 100",
			heldMessageOK: "above the safety threshold of 10"},
		{name: "approved", n: 100, k: 11, mutate: func(in *Input) { in.ApproveSuspensions = true }, wantSuspend: 11},
		{name: "the approved set", n: 100, k: 11, mutate: func(in *Input) {
			in.ApproveSuspensions, in.ApprovedHeld = true, vocab.HeldDigest(goneIDs(11))
		}, wantSuspend: 11},
		{name: "another set than the approved one is held again", n: 100, k: 11, mutate: func(in *Input) {
			in.ApproveSuspensions, in.ApprovedHeld = true, vocab.HeldDigest(goneIDs(10)) // one more left since
		}, wantHeld: 11, wantWarning: "not the set approved (digest " + vocab.HeldDigest(goneIDs(10)) + ")"},
		{name: "under the threshold an approval does not matter", n: 100, k: 10, mutate: func(in *Input) {
			in.ApproveSuspensions, in.ApprovedHeld = true, "000000000000"
		}, wantSuspend: 10},
		{name: "custom percent", n: 100, k: 11, mutate: func(in *Input) { in.SuspendThresholdPercent = 20 }, wantSuspend: 11},
		{name: "absolute max", n: 100, k: 6, mutate: func(in *Input) { in.SuspendThresholdMax = 5; in.SuspendThresholdPercent = 50 },
			wantHeld: 6, wantWarning: "at most 5"},
		{name: "at least one allowed", n: 3, k: 1, wantSuspend: 1},
		{name: "two of three is held", n: 3, k: 2, wantHeld: 2, wantWarning: "would suspend 2 of 3"},
		{name: "empty read suspends nobody", n: 5, k: 5, mutate: func(in *Input) { in.ApproveSuspensions = true },
			wantWarning: "directory read returned 0 users"},
		{name: "small read suspends nobody", n: 100, k: 60,
			mutate:      func(in *Input) { in.PreviousSnapshotSize = 100; in.ApproveSuspensions = true },
			wantWarning: "suspiciously small: 40 users in scope, last good read had 100"},
		{name: "just under half of an odd count is suspicious", n: 101, k: 51,
			mutate:      func(in *Input) { in.PreviousSnapshotSize = 101; in.ApproveSuspensions = true },
			wantWarning: "50 users in scope, last good read had 101"},
		{name: "exactly half is not suspicious", n: 100, k: 50,
			mutate: func(in *Input) { in.PreviousSnapshotSize = 100; in.ApproveSuspensions = true }, wantSuspend: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := suspensionInput(t, tt.n, tt.k)
			if tt.mutate != nil {
				tt.mutate(&in)
			}
			res := Plan(in)
			counts := countActions(res)
			if counts[Suspend] != tt.wantSuspend {
				t.Errorf("suspensions = %d, want %d", counts[Suspend], tt.wantSuspend)
			}
			held := 0
			for _, it := range res.Items {
				if it.Action == Fail && it.Failure.Type == vocab.SuspensionHeld {
					held++
					if !strings.Contains(it.Failure.Message, fmt.Sprintf("would suspend %d", tt.k)) ||
						!strings.Contains(it.Failure.Message, tt.heldMessageOK) {
						t.Errorf("held message %q", it.Failure.Message)
					}
					if it.ReleaseSeats != nil {
						t.Errorf("held suspension releases seats: %+v", it)
					}
				}
			}
			if held != tt.wantHeld || res.SuspensionsHeld != (tt.wantHeld > 0) {
				t.Errorf("held = %d (SuspensionsHeld %v), want %d", held, res.SuspensionsHeld, tt.wantHeld)
			}
			joined := strings.Join(res.Warnings, "\n")
			if tt.wantWarning == "" && joined != "" {
				t.Errorf("unexpected warnings %q", joined)
			}
			if !strings.Contains(joined, tt.wantWarning) {
				t.Errorf("warnings %q lack %q", joined, tt.wantWarning)
			}
		})
	}
}

func TestPlanSuspiciousReadClearsNoFailure(t *testing.T) {
	in := baseInput()
	in.Failed["g-gone"] = vocab.Failure{Type: vocab.ExistingAccount}
	if res := Plan(in); res.Resolved != nil {
		t.Errorf("empty read resolved failures: %v", res.Resolved)
	}
}

func TestPlanRetry(t *testing.T) {
	mk := func() Input {
		in := baseInput(
			user("g-lic", "Lars", admins), user("g-dom", "dora", staff), user("g-ok", "otto", staff),
			user("g-ex", "eve", staff))
		in.Failed["g-lic"] = vocab.Failure{Type: vocab.OutOfLicenses, Product: "Webinar"}
		in.Failed["g-dom"] = vocab.Failure{Type: vocab.DomainNotValidated}
		in.Failed["g-ex"] = vocab.Failure{Type: vocab.ExistingAccount}
		// A linked active user who left scope and is failed (held), and one who is not failed.
		held := user("g-held", "hal", staff)
		link(t, &in, held)
		in.Failed["g-held"] = vocab.Failure{Type: vocab.SuspensionHeld}
		link(t, &in, user("g-left", "lou", staff))
		// A failed user who is gone and never linked.
		in.Failed["g-gone"] = vocab.Failure{Type: vocab.DomainNotValidated}
		for i := range 30 { // enough active linked users for the threshold to allow one suspension
			u := user(fmt.Sprintf("k%02d", i), fmt.Sprintf("k%02d", i), staff)
			link(t, &in, u)
			in.Users = append(in.Users, u)
		}
		return in
	}
	tests := []struct {
		name         string
		filter       vocab.Filter
		want         []string // externalIds with items
		wantResolved []string
	}{
		{"all failed", vocab.Filter{}, []string{"g-dom", "g-ex", "g-held", "g-lic"}, []string{"g-gone"}},
		{"by type", vocab.Filter{Type: "domain_not_validated"}, []string{"g-dom"}, []string{"g-gone"}},
		{"by product", vocab.Filter{Product: "webinar"}, []string{"g-lic"}, nil},
		{"by userName, any case", vocab.Filter{User: "LARS@example.com"}, []string{"g-lic"}, nil},
		{"by externalId", vocab.Filter{User: "g-ex"}, []string{"g-ex"}, nil},
		{"a user who is not failed", vocab.Filter{User: "otto@example.com"}, nil, nil},
		{"type and user must both match", vocab.Filter{Type: vocab.OutOfLicenses, User: "dora@example.com"}, nil, nil},
		{"suspension_held retry suspends that user only", vocab.Filter{Type: vocab.SuspensionHeld}, []string{"g-held"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mk()
			f := tt.filter
			in.Retry = &f
			res := Plan(in)
			var got []string
			for _, it := range res.Items {
				got = append(got, it.ExternalID)
			}
			slices.Sort(got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("items for %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(res.Resolved, tt.wantResolved) {
				t.Errorf("resolved %v, want %v", res.Resolved, tt.wantResolved)
			}
			if hasItem(res, "g-left") {
				t.Error("retry suspended a user who was not failed")
			}
			if slices.Contains(tt.want, "g-held") {
				if it := itemFor(t, res, "g-held"); it.Action != Suspend {
					t.Errorf("retried held suspension: %+v", it)
				}
			}
		})
	}
}

func TestPlanDuplicateExternalIDs(t *testing.T) {
	in := baseInput(user("g1", "ann", staff), user("g1", "ann2", admins))
	res := Plan(in)
	if res.InScope != 1 || len(res.Items) != 1 || itemFor(t, res, "g1").UserName != "ann@example.com" {
		t.Errorf("duplicate handled wrongly: %+v", res)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "1 users twice") {
		t.Errorf("warnings = %v", res.Warnings)
	}
}

func TestPlanDisabledUserIsOutOfScope(t *testing.T) {
	u := user("g1", "dan", staff)
	u.Disabled = true
	res := Plan(baseInput(u, user("g2", "eli", staff)))
	if res.InScope != 1 || hasItem(res, "g1") {
		t.Errorf("disabled user planned: %+v", res)
	}
}

func BenchmarkPlan(b *testing.B) {
	const n = 100_000
	in := Input{
		Rules: []rules.Rule{
			{ID: 1, Priority: 1, GroupDN: admins, Role: "Admin", Products: []string{"Meeting", "Webinar"}},
			{ID: 2, Priority: 2, GroupDN: staff, Role: "Member", Products: []string{"Meeting"}, UserGroup: "Staff"},
		},
		Mappings:         []Mapping{{Source: "department", Target: "enterprise:department"}},
		ValidatedDomains: map[string]bool{"example.com": true},
		Applied:          map[string]Applied{},
		Failed:           map[string]vocab.Failure{},
		Seats:            map[string]int{"Meeting": n, "Webinar": n / 20},
		Held:             map[string]map[string]bool{"Meeting": {}, "Webinar": {}},
	}
	for i := range n {
		g := staff
		if i%10 == 0 {
			g = admins
		}
		u := user(fmt.Sprintf("guid-%06d", i), fmt.Sprintf("user%06d", i), g)
		u.Attributes = map[string]string{"department": "D" + fmt.Sprint(i%50)}
		in.Users = append(in.Users, u)
		if i%2 == 0 { // half linked and unchanged, half new
			a, _ := rules.Resolve(in.Rules, u.Groups)
			d := Build(u, a, in.Mappings)
			in.Applied[u.ExternalID] = Applied{ExternalID: u.ExternalID, State: d}
			for _, p := range d.Products {
				in.Held[p][u.ExternalID] = true
			}
		}
	}
	for b.Loop() {
		res := Plan(in)
		if res.InScope != n {
			b.Fatalf("InScope = %d", res.InScope)
		}
	}
}
