package plan

import (
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/vocab"
)

// A user whose directory entry had bad values (directory.User.Problems) fails alone as
// invalid_user_data, naming the attributes; the rest of the sync goes on.
func TestPlanFailsUsersWithDirectoryProblems(t *testing.T) {
	nul := `attribute "displayName": contains a NUL character`
	mail := `attribute "mail": has 2 distinct values, want one`
	bad := user("g-bad", "bea", staff)
	bad.Problems = []string{nul, mail}
	linked := user("g-linked", "lin", staff)
	offBad := user("g-off", "olaf", staff)
	offBad.Problems, offBad.Disabled = []string{nul}, true
	good := user("g-good", "gus", staff)
	in := baseInput(bad, linked, offBad, good)
	link(t, &in, linked)
	link(t, &in, offBad)
	// The same desired state as applied: only the problem is new (the first mail value is
	// unchanged). It must not count as unchanged, nor be suspended.
	in.Users[1].Problems = []string{mail}

	res := Plan(in)
	for id, want := range map[string]string{"g-bad": nul + "; " + mail, "g-linked": mail} {
		it := itemFor(t, res, id)
		if it.Action != Fail || it.Failure.Type != vocab.InvalidUserData || !strings.HasSuffix(it.Failure.Message, ": "+want) {
			t.Errorf("%s: %+v (failure %+v), want invalid_user_data ending %q", id, it, it.Failure, want)
		}
		if len(it.NewSeats)+len(it.ReleaseSeats) != 0 {
			t.Errorf("%s: a failed user takes or gives back seats: %+v", id, it)
		}
	}
	// Disabled: out of scope whatever its values, so the linked account is suspended.
	if it := itemFor(t, res, "g-off"); it.Action != Suspend {
		t.Errorf("disabled user with problems: %+v, want suspend", it)
	}
	if it := itemFor(t, res, "g-good"); it.Action != Create {
		t.Errorf("good user: %+v, want create", it)
	}
	if res.Unchanged != 0 || res.InScope != 3 {
		t.Errorf("unchanged %d, in scope %d; want 0 and 3", res.Unchanged, res.InScope)
	}
	held := heldBy(in.Held)
	if NewPlanner(in).Settled(in.Users[1], in.Applied["g-linked"].State.Hash(), false, held["g-linked"]) {
		t.Error("a linked user with problems and an unchanged desired state is settled")
	}
	ok := in.Users[1]
	ok.Problems = nil
	if !NewPlanner(in).Settled(ok, in.Applied["g-linked"].State.Hash(), false, held["g-linked"]) {
		t.Error("the same user without problems is not settled")
	}
}

func TestCheckDirectoryUser(t *testing.T) {
	if f := CheckDirectoryUser(directory.User{ExternalID: "x"}); f != nil {
		t.Errorf("no problems: %+v", f)
	}
	f := CheckDirectoryUser(directory.User{Problems: []string{`attribute "objectGUID": has 15 bytes, want 16`}})
	if f == nil || f.Type != vocab.InvalidUserData || !strings.Contains(f.Message, `attribute "objectGUID": has 15 bytes, want 16`) {
		t.Errorf("got %+v", f)
	}
	// Check: the directory's problems first, then the desired state's.
	d := Desired{ExternalID: "g", UserName: "a@example.com", Email: "a@example.com"}
	if f := Check(directory.User{Problems: []string{"p"}}, d, nil); f == nil || f.Type != vocab.InvalidUserData {
		t.Errorf("Check with problems: %+v", f)
	}
	if f := Check(directory.User{}, d, nil); f == nil || f.Type != vocab.DomainNotValidated {
		t.Errorf("Check without problems: %+v", f)
	}
}

// Invisible formatting characters (Unicode Cf) fail a user in userName, email and names,
// named by code point, never showing the value.
func TestCheckUserRefusesInvisibleCharacters(t *testing.T) {
	validated := map[string]bool{"example.com": true}
	ok := Desired{ExternalID: "g1", UserName: "ann@example.com", Email: "ann@example.com", Active: true,
		GivenName: "Zebulon", FamilyName: "Lee", DisplayName: "Zebulon Lee"}
	tests := []struct {
		name string
		set  func(d *Desired)
		want string // "" when fine
	}{
		{"right-to-left override in displayName", func(d *Desired) { d.DisplayName = "Zebulon\u202eeeL" },
			"displayName contains an invisible formatting character (U+202E)"},
		{"zero-width space in userName", func(d *Desired) { d.UserName = "ann\u200b@example.com" },
			"userName contains an invisible formatting character (U+200B)"},
		{"zero-width space in email", func(d *Desired) { d.Email = "ann\u200b@example.com" },
			"email contains an invisible formatting character (U+200B)"},
		{"soft hyphen in givenName", func(d *Desired) { d.GivenName = "Zebu\u00adlon" },
			"givenName contains an invisible formatting character (U+00AD)"},
		{"byte order mark in familyName", func(d *Desired) { d.FamilyName = "\ufeffZebulon" },
			"familyName contains an invisible formatting character (U+FEFF)"},
		{"zero-width joiner in userName", func(d *Desired) { d.UserName = "ann\u200d@example.com" },
			"userName contains an invisible formatting character (U+200D)"},
		{"zero-width non-joiner in a Persian name", func(d *Desired) { d.GivenName = "\u0645\u06cc\u200c\u0631\u0636\u0627" }, ""},
		{"zero-width joiner in a displayName", func(d *Desired) { d.DisplayName = "\u0915\u094d\u200d\u0937" }, ""},
		{"invisible character in a mapped value is no identity", func(d *Desired) { d.Custom = map[string]string{"x": "a\u200bb"} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.set(&d)
			f := CheckUser(d, validated)
			if tt.want == "" {
				if f != nil {
					t.Fatalf("unexpected failure %+v", f)
				}
				return
			}
			if f == nil || f.Type != vocab.InvalidUserData || f.Message != tt.want {
				t.Fatalf("got %+v, want invalid_user_data %q", f, tt.want)
			}
		})
	}
}

// Failures name the field of a name or mapped attribute, never its value.
func TestCheckUserMessagesDoNotShowNames(t *testing.T) {
	const private = "Zebulon"
	ok := Desired{ExternalID: "g1", UserName: "ann@example.com", Email: "ann@example.com"}
	for _, set := range []func(d *Desired){
		func(d *Desired) { d.FamilyName = private + "\x07" },
		func(d *Desired) { d.DisplayName = private + strings.Repeat("x", MaxValueLen) },
		func(d *Desired) { d.GivenName = private + "\xff" },
		func(d *Desired) { d.Custom = map[string]string{"office": private + "\n"} },
	} {
		d := ok
		set(&d)
		f := CheckUser(d, map[string]bool{"example.com": true})
		if f == nil || f.Type != vocab.InvalidUserData || strings.Contains(f.Message, private) {
			t.Errorf("got %+v: want invalid_user_data without the value", f)
		}
	}
}
