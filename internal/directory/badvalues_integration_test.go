package directory_test

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/vocab"
)

// adLikeSchema gives a test slapd the Active Directory attributes a read takes, with
// syntaxes loose enough to hold what a real directory sometimes does: an objectGUID of the
// wrong length, a userAccountControl that is no number, and an octet-string attribute that
// holds bytes that are not UTF-8 (slapd refuses those in directoryString attributes).
const adLikeSchema = `
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'objectGUID' SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'userAccountControl' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'accountExpires' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.4 NAME 'legacyCode' SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'testADUser' AUXILIARY MAY ( objectGUID $ userAccountControl $ accountExpires $ legacyCode ) )
`

const (
	badSuffix = "dc=example,dc=com"
	badAdmin  = "cn=admin,dc=example,dc=com"
	badPW     = "admin-secret-pw"
	badPeople = "ou=People,dc=example,dc=com"
	badStaff  = "cn=Staff,ou=Groups,dc=example,dc=com"
)

// badValuesLDAP starts a slapd of its own (the shared one holds the demo, whose counts
// other tests check) with the AD-like schema and loads entries.
func badValuesLDAP(t *testing.T, entries []*ldap.AddRequest) *devstack.Slapd {
	t.Helper()
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
	dir := t.TempDir()
	schema := filepath.Join(dir, "schema")
	if err := os.Mkdir(schema, 0o700); err != nil {
		t.Fatal(err)
	}
	// Slapd includes core, cosine, inetorgperson and nis from SchemaDir: nis carries ours.
	for _, name := range []string{"core", "cosine", "inetorgperson", "nis"} {
		b, err := os.ReadFile(filepath.Join("/etc/ldap/schema", name+".schema"))
		if err != nil {
			devstacktest.SkipUnlessRequired(t, "slapd schema: %v", err)
		}
		if name == "nis" {
			b = append(b, adLikeSchema...)
		}
		if err := os.WriteFile(filepath.Join(schema, name+".schema"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := &devstack.Slapd{Dir: filepath.Join(dir, "slapd"), Suffix: badSuffix, AdminDN: badAdmin, AdminPassword: badPW, SchemaDir: schema}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("slapd: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if err := devstack.LoadEntries(context.Background(), s.URL(), badAdmin, badPW, entries); err != nil {
		t.Fatal(err)
	}
	return s
}

// badPerson is a valid user; with changes it is a user with a bad value.
func badPerson(uid string, guid []byte, change map[string][]string) *ldap.AddRequest {
	attrs := map[string][]string{
		"objectClass": {"top", "inetOrgPerson", "testADUser"}, "uid": {uid}, "cn": {uid}, "sn": {"Lee"},
		"givenName": {"Ann"}, "displayName": {"Ann Lee"}, "mail": {uid + "@example.com"},
		"userAccountControl": {"512"}, "departmentNumber": {"Sales"}, "legacyCode": {"L-1"},
	}
	if guid != nil {
		attrs["objectGUID"] = []string{string(guid)}
	}
	for k, v := range change {
		if v == nil {
			delete(attrs, k)
		} else {
			attrs[k] = v
		}
	}
	e := ldap.NewAddRequest("uid="+uid+","+badPeople, nil)
	for _, k := range []string{"objectClass", "uid", "cn", "sn", "givenName", "displayName", "mail", "userAccountControl",
		"departmentNumber", "legacyCode", "objectGUID"} {
		if v, ok := attrs[k]; ok {
			e.Attribute(k, v)
		}
	}
	return e
}

func guidBytes(n byte) []byte {
	b := make([]byte, 16)
	for i := range b {
		b[i] = n + byte(i)
	}
	return b
}

// badWant is what a read and a plan should make of one entry.
type badWant struct {
	problem  string // in User.Problems (directory)
	failure  string // in the invalid_user_data failure (plan); "" when the user is fine
	disabled bool
}

// One entry per kind of bad value, among good ones: the read succeeds, the good users are
// in it, each bad one is the user's own problem, named without its value, and the plan
// fails exactly those users as invalid_user_data. Before, any of them failed the whole read.
func TestSnapshotKeepsReadingPastBadValues(t *testing.T) {
	const private = "Zebulon" // in the bad values: no problem nor failure may show it
	type want = badWant
	wants := map[string]want{
		"good1": {}, "good2": {},
		"nul":       {`attribute "displayName": contains a NUL character`, `attribute "displayName": contains a NUL character`, false},
		"nulmapped": {`attribute "departmentNumber": contains a NUL character`, `attribute "departmentNumber": contains a NUL character`, false},
		"badutf8":   {`attribute "legacyCode": is not valid UTF-8`, `attribute "legacyCode": is not valid UTF-8`, false},
		"oversize":  {`attribute "displayName": is 1507 bytes long (max 1024)`, `attribute "displayName": is 1507 bytes long`, false},
		"bigmapped": {`attribute "departmentNumber": is 2507 bytes long (max 2048)`, `attribute "departmentNumber": is 2507 bytes long`, false},
		"invisible": {"", "givenName contains an invisible formatting character (U+202E)", false},
		"zwsp":      {"", "displayName contains an invisible formatting character (U+200B)", false},
		"multimail": {`attribute "mail": has 2 distinct values, want one`, `attribute "mail": has 2 distinct values, want one`, false},
		"badguid":   {`attribute "objectGUID": has 15 bytes, want 16`, `attribute "objectGUID": has 15 bytes, want 16`, false},
		"baduac":    {"", "", true},
	}
	users := []*ldap.AddRequest{
		badPerson("good1", guidBytes(1), nil),
		badPerson("good2", guidBytes(2), nil),
		badPerson("nul", guidBytes(3), map[string][]string{"displayName": {private + "\x00Lee"}}),
		badPerson("nulmapped", guidBytes(4), map[string][]string{"departmentNumber": {private + "\x00"}}),
		badPerson("badutf8", guidBytes(5), map[string][]string{"legacyCode": {private + "\xff\xfe"}}),
		badPerson("oversize", guidBytes(6), map[string][]string{"displayName": {private + strings.Repeat("x", 1500)}}),
		badPerson("bigmapped", guidBytes(7), map[string][]string{"departmentNumber": {private + strings.Repeat("y", 2500)}}),
		badPerson("invisible", guidBytes(8), map[string][]string{"givenName": {private + "\u202eLee"}}),
		badPerson("zwsp", guidBytes(9), map[string][]string{"displayName": {private + "\u200b"}}),
		badPerson("multimail", guidBytes(10), map[string][]string{"mail": {"multimail@example.com", private + "@example.com"}}),
		badPerson("badguid", guidBytes(11)[:15], nil),
		badPerson("baduac", guidBytes(12), map[string][]string{"userAccountControl": {private}}),
		badPerson("noguid", nil, nil), // cannot be keyed: skipped
	}
	skeleton := []*ldap.AddRequest{}
	base := ldap.NewAddRequest(badSuffix, nil)
	base.Attribute("objectClass", []string{"top", "dcObject", "organization"})
	base.Attribute("dc", []string{"example"})
	base.Attribute("o", []string{"Example"})
	skeleton = append(skeleton, base)
	for _, ou := range []string{"People", "Groups"} {
		e := ldap.NewAddRequest("ou="+ou+","+badSuffix, nil)
		e.Attribute("objectClass", []string{"top", "organizationalUnit"})
		e.Attribute("ou", []string{ou})
		skeleton = append(skeleton, e)
	}
	staff := ldap.NewAddRequest(badStaff, nil)
	staff.Attribute("objectClass", []string{"top", "groupOfNames"})
	staff.Attribute("cn", []string{"Staff"})
	var members []string
	for _, u := range users {
		members = append(members, u.DN)
	}
	staff.Attribute("member", members)
	s := badValuesLDAP(t, append(append(skeleton, users...), staff))

	extra := []string{"departmentNumber", "legacyCode"}
	read := func(t *testing.T, profile string) (map[string]directory.User, directory.Stats) {
		t.Helper()
		r, err := directory.Dial(context.Background(), directory.Config{URL: s.URL(), BindDN: badAdmin, BindPassword: badPW,
			BaseDN: badSuffix, AllowPlaintextBind: true, Profile: profile, UserNameAttribute: "mail",
			UserFilter: "(objectClass=inetOrgPerson)", GroupFilter: "(objectClass=groupOfNames)", PageSize: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := map[string]directory.User{}
		stats, err := r.Snapshot(context.Background(), []string{badStaff}, extra, 3, func(us []directory.User) error {
			for _, u := range us {
				got[strings.TrimPrefix(strings.Split(u.DN, ",")[0], "uid=")] = u
			}
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot failed on a bad value: %v", err)
		}
		return got, stats
	}

	t.Run("ad", func(t *testing.T) {
		got, stats := read(t, directory.ProfileAD)
		wantStats := directory.Stats{Users: len(users), InScope: len(wants) - 1, Disabled: 1, Groups: 1,
			Skipped: map[string]int{directory.SkipNoObjectGUID: 1}, Invalid: 7, Unreadable: 1}
		if !reflect.DeepEqual(stats, wantStats) {
			t.Errorf("stats = %+v, want %+v", stats, wantStats)
		}
		if _, ok := got["noguid"]; ok {
			t.Error("the entry without objectGUID was emitted")
		}
		checkBadValues(t, got, wants, private, extra)
		if id := got["badguid"].ExternalID; id != "invalid-objectGUID:"+hex.EncodeToString(guidBytes(11)[:15]) {
			t.Errorf("badguid: ExternalID = %q", id)
		}
	})
	t.Run("openldap", func(t *testing.T) {
		got, stats := read(t, directory.ProfileOpenLDAP)
		// entryUUID keys every entry; objectGUID and userAccountControl mean nothing here.
		w := map[string]want{}
		for k, v := range wants {
			if k != "badguid" && k != "baduac" {
				w[k] = v
			}
		}
		w["badguid"], w["baduac"], w["noguid"] = want{}, want{}, want{}
		if stats.Users != len(users) || len(stats.Skipped) != 0 || stats.Invalid != 6 || stats.Unreadable != 0 {
			t.Errorf("stats = %+v", stats)
		}
		checkBadValues(t, got, w, private, extra)
	})
}

// checkBadValues checks the users read against wants, then plans them: the bad ones fail
// invalid_user_data naming the attribute, the others are created.
func checkBadValues(t *testing.T, got map[string]directory.User, wants map[string]badWant, private string, extra []string) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("read %d users, want %d", len(got), len(wants))
	}
	for uid, w := range wants {
		u, ok := got[uid]
		if !ok {
			t.Errorf("%s: not read", uid)
			continue
		}
		var wantProblems []string
		if w.problem != "" {
			wantProblems = []string{w.problem}
		}
		if !reflect.DeepEqual(u.Problems, wantProblems) {
			t.Errorf("%s: Problems = %q, want %q", uid, u.Problems, wantProblems)
		}
		if u.Disabled != w.disabled {
			t.Errorf("%s: Disabled = %v, want %v", uid, u.Disabled, w.disabled)
		}
		if !reflect.DeepEqual(directory.Clean(u), u) {
			t.Errorf("%s: the user read is not storable as it is: %+v", uid, u)
		}
	}
	var users []directory.User
	for _, u := range got {
		users = append(users, u)
	}
	res := plan.Plan(plan.Input{Users: users, ValidatedDomains: map[string]bool{"example.com": true},
		Rules:    []rules.Rule{{ID: 1, Priority: 1, GroupDN: badStaff, Role: "Member"}},
		Mappings: []plan.Mapping{{Source: extra[0], Target: "enterprise:department"}, {Source: extra[1], Target: "custom:legacy"}}})
	byID := map[string]plan.Item{}
	for _, it := range res.Items {
		byID[it.ExternalID] = it
	}
	for uid, w := range wants {
		it, ok := byID[got[uid].ExternalID]
		switch {
		case w.disabled:
			if ok {
				t.Errorf("%s (disabled): planned %+v", uid, it)
			}
		case w.failure == "":
			if !ok || it.Action != plan.Create {
				t.Errorf("%s: planned %+v, want a create", uid, it)
			}
		case !ok || it.Action != plan.Fail || it.Failure.Type != vocab.InvalidUserData || !strings.Contains(it.Failure.Message, w.failure):
			t.Errorf("%s: planned %+v, want invalid_user_data with %q", uid, it, w.failure)
		case strings.Contains(it.Failure.Message, private):
			t.Errorf("%s: failure %q shows the value", uid, it.Failure.Message)
		}
	}
}
