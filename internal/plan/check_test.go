package plan

import (
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/vocab"
)

func TestCheckUser(t *testing.T) {
	validated := map[string]bool{"example.com": true, "sub.example.org": true}
	ok := Desired{ExternalID: "g1", UserName: "ann@example.com", Email: "Ann.Lee@Example.COM", Active: true}
	with := func(f func(d *Desired)) Desired {
		d := ok
		f(&d)
		return d
	}
	long := strings.Repeat("x", 257)
	tests := []struct {
		name     string
		d        Desired
		wantType string
		wantMsg  []string
	}{
		{"valid, domain matched case-insensitively", ok, "", nil},
		{"subdomain validated exactly", with(func(d *Desired) { d.Email = "a@sub.example.org" }), "", nil},
		{"256 characters is fine", with(func(d *Desired) { d.DisplayName = strings.Repeat("d", 256) }), "", nil},
		{"unicode names are fine", with(func(d *Desired) { d.GivenName = "Zoë"; d.FamilyName = "Ægir" }), "", nil},
		{"empty userName", with(func(d *Desired) { d.UserName = "" }), vocab.InvalidUserData, []string{"userName is empty"}},
		{"userName with space", with(func(d *Desired) { d.UserName = "ann lee@example.com" }), vocab.InvalidUserData,
			[]string{`userName "ann lee@example.com" contains white space`}},
		{"empty externalId", with(func(d *Desired) { d.ExternalID = "" }), vocab.InvalidUserData, []string{"externalId is empty"}},
		{"empty email", with(func(d *Desired) { d.Email = " " }), vocab.InvalidUserData, []string{"email is empty", "ann@example.com"}},
		{"email without @", with(func(d *Desired) { d.Email = "ann.example.com" }), vocab.InvalidUserData,
			[]string{`email "ann.example.com" is malformed: no @`}},
		{"email with two @", with(func(d *Desired) { d.Email = "a@b@example.com" }), vocab.InvalidUserData, []string{"more than one @"}},
		{"email without domain", with(func(d *Desired) { d.Email = "ann@" }), vocab.InvalidUserData, []string{"no domain after @"}},
		{"email with empty label", with(func(d *Desired) { d.Email = "ann@example..com" }), vocab.InvalidUserData, []string{"empty label"}},
		{"email with bad domain char", with(func(d *Desired) { d.Email = "ann@exa_mple.com" }), vocab.InvalidUserData, []string{"invalid character in domain"}},
		{"email with space", with(func(d *Desired) { d.Email = "ann lee@example.com" }), vocab.InvalidUserData, []string{"white space before @"}},
		{"oversize display name", with(func(d *Desired) { d.DisplayName = long }), vocab.InvalidUserData,
			[]string{"displayName", "257 characters (max 256)"}},
		{"oversize custom value", with(func(d *Desired) { d.Custom = map[string]string{"office": long} }), vocab.InvalidUserData,
			[]string{"custom office", "257 characters"}},
		{"control character", with(func(d *Desired) { d.FamilyName = "Lee\x07" }), vocab.InvalidUserData,
			[]string{`familyName contains control characters`}},
		{"newline in enterprise value", with(func(d *Desired) { d.Enterprise = map[string]string{"department": "a\nb"} }), vocab.InvalidUserData,
			[]string{"enterprise department"}},
		{"domain not validated", with(func(d *Desired) { d.Email = "ann@Other.NET" }), vocab.DomainNotValidated,
			[]string{`email domain "other.net" is not a validated domain`}},
		{"parent of a validated subdomain is not validated", with(func(d *Desired) { d.Email = "ann@example.org" }), vocab.DomainNotValidated,
			[]string{`"example.org"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := CheckUser(tt.d, validated)
			if tt.wantType == "" {
				if f != nil {
					t.Fatalf("unexpected failure %+v", f)
				}
				return
			}
			if f == nil {
				t.Fatalf("no failure, want %s", tt.wantType)
			}
			if f.Type != tt.wantType {
				t.Errorf("type = %s, want %s (%s)", f.Type, tt.wantType, f.Message)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(f.Message, w) {
					t.Errorf("message %q does not contain %q", f.Message, w)
				}
			}
		})
	}
}

func TestCheckUserWithoutValidatedDomains(t *testing.T) {
	f := CheckUser(Desired{ExternalID: "g", UserName: "a@example.com", Email: "a@example.com"}, nil)
	if f == nil || f.Type != vocab.DomainNotValidated {
		t.Fatalf("got %+v, want domain_not_validated", f)
	}
}
