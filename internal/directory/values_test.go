package directory

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// secret is in every bad value below: no Problem may show it.
const secret = "Zebulon"

// Each kind of bad value is the user's own problem, named by attribute, never by value:
// the entry is still read, and stored repaired.
func TestUserOfNamesBadValuesWithoutShowingThem(t *testing.T) {
	guid := string([]byte{0xE0, 0x04, 0x25, 0x3F, 0x89, 0x4F, 0xD3, 0x11, 0x9A, 0x0C, 0x03, 0x05, 0xE8, 0x2C, 0x33, 0x01})
	ad := &Reader{cfg: Config{Profile: ProfileAD}.withDefaults()}
	ldapR := &Reader{cfg: Config{}.withDefaults()}
	good := func() map[string][]string {
		return map[string][]string{"objectGUID": {guid}, "entryUUID": {"0b6f6d2c-1c1a-103f-8f1e-0d1b6a7c9a11"},
			"userPrincipalName": {"ann@corp.example"}, "mail": {"ann@corp.example"},
			"givenName": {"Ann"}, "sn": {"Lee"}, "displayName": {"Ann Lee"}, "department": {"Sales"}}
	}
	tests := []struct {
		name    string
		r       *Reader
		change  func(a map[string][]string)
		problem string
		check   func(t *testing.T, u User)
	}{
		{"NUL in displayName", ad, func(a map[string][]string) { a["displayName"] = []string{secret + "\x00Lee"} },
			`attribute "displayName": contains a NUL character`,
			func(t *testing.T, u User) {
				if u.DisplayName != secret+"\uFFFDLee" {
					t.Errorf("DisplayName = %q, want the NUL replaced by U+FFFD", u.DisplayName)
				}
			}},
		{"NUL in a mapped attribute", ldapR, func(a map[string][]string) { a["department"] = []string{secret + "\x00"} },
			`attribute "department": contains a NUL character`,
			func(t *testing.T, u User) {
				if u.Attributes["department"] != secret+"\uFFFD" {
					t.Errorf("department = %q", u.Attributes["department"])
				}
			}},
		{"invalid UTF-8 in givenName", ad, func(a map[string][]string) { a["givenName"] = []string{secret + "\xff\xfe"} },
			`attribute "givenName": is not valid UTF-8`,
			func(t *testing.T, u User) {
				if !utf8.ValidString(u.GivenName) || !strings.HasPrefix(u.GivenName, secret) {
					t.Errorf("GivenName = %q, want valid UTF-8", u.GivenName)
				}
			}},
		{"invalid UTF-8 in a mapped attribute", ldapR, func(a map[string][]string) { a["department"] = []string{"\xc3" + secret} },
			`attribute "department": is not valid UTF-8`, nil},
		{"oversize sn", ad, func(a map[string][]string) { a["sn"] = []string{secret + strings.Repeat("é", 600)} },
			`attribute "sn": is 1207 bytes long (max 1024)`,
			func(t *testing.T, u User) {
				if len(u.FamilyName) > MaxNameBytes || !utf8.ValidString(u.FamilyName) {
					t.Errorf("FamilyName: %d bytes, valid UTF-8 %v; want at most %d, cut between characters",
						len(u.FamilyName), utf8.ValidString(u.FamilyName), MaxNameBytes)
				}
			}},
		{"oversize userName", ad, func(a map[string][]string) {
			a["userPrincipalName"] = []string{strings.Repeat("a", MaxNameBytes) + "@corp.example"}
		}, `attribute "userPrincipalName": is 1037 bytes long (max 1024)`, nil},
		{"oversize mapped attribute", ldapR, func(a map[string][]string) {
			a["department"] = []string{secret + strings.Repeat("x", MaxAttributeBytes)}
		}, `attribute "department": is 2055 bytes long (max 2048)`,
			func(t *testing.T, u User) {
				if len(u.Attributes["department"]) != MaxAttributeBytes {
					t.Errorf("department: %d bytes, want %d", len(u.Attributes["department"]), MaxAttributeBytes)
				}
			}},
		{"several mail values", ad, func(a map[string][]string) { a["mail"] = []string{"ann@corp.example", secret + "@corp.example"} },
			`attribute "mail": has 2 distinct values, want one`,
			func(t *testing.T, u User) {
				if u.Email != "ann@corp.example" {
					t.Errorf("Email = %q, want the first value", u.Email)
				}
			}},
		{"several mail values, also the userName", ldapR, func(a map[string][]string) {
			a["mail"] = []string{"ann@corp.example", " " + secret + "@corp.example", "ANN@corp.example"}
		}, `attribute "mail": has 2 distinct values, want one`, nil},
		{"malformed objectGUID", ad, func(a map[string][]string) { a["objectGUID"] = []string{guid[:15]} },
			`attribute "objectGUID": has 15 bytes, want 16`,
			func(t *testing.T, u User) {
				if u.ExternalID != "invalid-objectGUID:e004253f894fd3119a0c0305e82c33" {
					t.Errorf("ExternalID = %q, want a stable key that is no GUID", u.ExternalID)
				}
			}},
		{"huge objectGUID", ad, func(a map[string][]string) { a["objectGUID"] = []string{strings.Repeat("g", 4000)} },
			`attribute "objectGUID": has 4000 bytes, want 16`,
			func(t *testing.T, u User) {
				if !strings.HasPrefix(u.ExternalID, "invalid-objectGUID:sha256:") || len(u.ExternalID) > 64 {
					t.Errorf("ExternalID = %q, want a short hashed key", u.ExternalID)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := good()
			tt.change(a)
			u, skip, unreadable := tt.r.userOf(ldap.NewEntry("CN=Ann Lee,DC=corp", a), []string{"department"})
			if skip != "" || unreadable != "" {
				t.Fatalf("skip %q, unreadable %q; want the user read", skip, unreadable)
			}
			if !reflect.DeepEqual(u.Problems, []string{tt.problem}) {
				t.Errorf("Problems = %q, want [%q]", u.Problems, tt.problem)
			}
			for _, p := range u.Problems {
				if strings.Contains(p, secret) {
					t.Errorf("problem %q shows the value", p)
				}
			}
			if u.Disabled {
				t.Error("a bad value disabled the user")
			}
			if !userIsClean(u) {
				t.Errorf("user %+v is not storable", u)
			}
			if tt.check != nil {
				tt.check(t, u)
			}
		})
	}
}

func TestUserOfAcceptsWhatIsNoProblemOfTheDirectory(t *testing.T) {
	r := &Reader{cfg: Config{}.withDefaults()}
	for name, attrs := range map[string]map[string][]string{
		"mail twice, differing in case":         {"mail": {"Ann@corp.example", "ann@CORP.example"}},
		"values at the limits":                  {"displayName": {strings.Repeat("é", MaxNameBytes/2)}, "department": {strings.Repeat("x", MaxAttributeBytes)}},
		"an invisible character (plan decides)": {"displayName": {"Ann\u202eLee"}},
		"a control character (plan decides)":    {"givenName": {"Ann\x07"}},
		"several givenName values":              {"givenName": {"Ann", "Annie"}},
	} {
		attrs["entryUUID"] = []string{"0b6f6d2c-1c1a-103f-8f1e-0d1b6a7c9a11"}
		u, skip, _ := r.userOf(ldap.NewEntry("uid=ann,dc=corp", attrs), []string{"department"})
		if skip != "" || len(u.Problems) != 0 {
			t.Errorf("%s: skip %q, Problems %q; want none", name, skip, u.Problems)
		}
	}
}

func TestUserOfSkipsEntriesWithoutID(t *testing.T) {
	r := &Reader{cfg: Config{}.withDefaults()}
	for _, id := range [][]string{nil, {""}, {"  "}} {
		attrs := map[string][]string{"mail": {"ann@corp.example"}}
		if id != nil {
			attrs["entryUUID"] = id
		}
		if _, skip, _ := r.userOf(ldap.NewEntry("uid=ann,dc=corp", attrs), nil); skip != SkipNoEntryUUID {
			t.Errorf("entryUUID %q: skip = %q, want %q", id, skip, SkipNoEntryUUID)
		}
	}
	ad := &Reader{cfg: Config{Profile: ProfileAD}.withDefaults()}
	if _, skip, _ := ad.userOf(ldap.NewEntry("CN=x,DC=corp", map[string][]string{"objectGUID": {""}}), nil); skip != SkipNoObjectGUID {
		t.Errorf("empty objectGUID: skip = %q, want %q", skip, SkipNoObjectGUID)
	}
}

func TestCleanMakesEveryValueStorable(t *testing.T) {
	in := User{ExternalID: "id-1", DN: "uid=a\x00,dc=corp", UserName: "ann\x00@corp.example", Email: "ann@corp.example",
		GivenName: "Ann\xff", FamilyName: "Lee", Attributes: map[string]string{"office": "B\x00", "l": "Paris"},
		Groups: []string{"cn=g\xff,dc=corp"}, Problems: []string{`attribute "mail": has 2 distinct values, want one`}}
	keep := in.Attributes["office"]
	got := Clean(in)
	if !userIsClean(got) {
		t.Fatalf("Clean left %+v unstorable", got)
	}
	want := []string{`attribute "mail": has 2 distinct values, want one`,
		`attribute "userName": contains a NUL character`, `attribute "givenName": is not valid UTF-8`,
		`attribute "office": contains a NUL character`}
	if !reflect.DeepEqual(got.Problems, want) {
		t.Errorf("Problems = %q, want %q", got.Problems, want)
	}
	if got.UserName != "ann\uFFFD@corp.example" || got.Attributes["l"] != "Paris" || got.FamilyName != "Lee" {
		t.Errorf("Clean changed or lost values: %+v", got)
	}
	if in.Attributes["office"] != keep || in.Problems[0] != want[0] || len(in.Problems) != 1 {
		t.Error("Clean modified its argument")
	}
	again := Clean(got)
	if !reflect.DeepEqual(again, got) {
		t.Errorf("Clean of a clean user changed it: %+v", again)
	}
	ok := User{ExternalID: "x", UserName: "a@b.c", Groups: []string{"cn=g"}}
	if c := Clean(ok); !reflect.DeepEqual(c, ok) {
		t.Errorf("Clean(%+v) = %+v", ok, c)
	}
}

func TestCutKeepsWholeCharacters(t *testing.T) {
	for _, tt := range []struct {
		v    string
		max  int
		want string
	}{{"abc", 5, "abc"}, {"abc", 2, "ab"}, {"aé", 2, "a"}, {"aéb", 3, "aé"}, {"€€", 4, "€"}, {"€", 0, ""}} {
		if got := cut(tt.v, tt.max); got != tt.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tt.v, tt.max, got, tt.want)
		}
	}
	if got := distinctValues([]string{"a@x", " A@X ", "", "b@x"}); got != 2 {
		t.Errorf("distinctValues = %d, want 2", got)
	}
	if !slices.Equal(uniq([]string{"a", "b", "a"}), []string{"a", "b"}) {
		t.Error("uniq")
	}
}
