package directory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func TestGUIDStringUsesADByteOrder(t *testing.T) {
	// The GUID {3F2504E0-4F89-11D3-9A0C-0305E82C3301} as AD stores it in objectGUID.
	raw := []byte{0xE0, 0x04, 0x25, 0x3F, 0x89, 0x4F, 0xD3, 0x11, 0x9A, 0x0C, 0x03, 0x05, 0xE8, 0x2C, 0x33, 0x01}
	got, err := guidString(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := "3f2504e0-4f89-11d3-9a0c-0305e82c3301"; got != want {
		t.Errorf("guidString = %s, want %s", got, want)
	}
	if _, err := guidString(raw[:15]); err == nil || !strings.Contains(err.Error(), "15 bytes") {
		t.Errorf("15-byte GUID: err = %v, want one naming the length", err)
	}
}

func TestParseRangedAttr(t *testing.T) {
	tests := []struct {
		desc    string
		want    attrRange
		ok      bool
		wantErr bool
		next    string
	}{
		{desc: "member", ok: false},
		{desc: "member;range=0-1499", want: attrRange{Attr: "member", Low: 0, High: 1499}, ok: true, next: "member;range=1500-*"},
		{desc: "member;range=1500-2999", want: attrRange{Attr: "member", Low: 1500, High: 2999}, ok: true, next: "member;range=3000-*"},
		{desc: "member;Range=3000-*", want: attrRange{Attr: "member", Low: 3000, High: -1, Last: true}, ok: true},
		{desc: "member;binary;range=0-*", want: attrRange{Attr: "member", Low: 0, High: -1, Last: true}, ok: true},
		{desc: "userCertificate;binary", ok: false},
		{desc: "member;range=abc-10", ok: true, wantErr: true},
		{desc: "member;range=10-5", ok: true, wantErr: true},
		{desc: "member;range=10", ok: true, wantErr: true},
	}
	for _, tc := range tests {
		got, ok, err := parseRangedAttr(tc.desc)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.desc, err, tc.wantErr)
			continue
		}
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.desc, ok, tc.ok)
		}
		if tc.wantErr {
			if !strings.Contains(err.Error(), tc.desc) {
				t.Errorf("%s: error %q does not name the attribute", tc.desc, err)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.desc, got, tc.want)
		}
		if tc.next != "" && got.next(0) != tc.next {
			t.Errorf("%s: next(0) = %s, want %s", tc.desc, got.next(0), tc.next)
		}
	}
}

func TestNormalizeDN(t *testing.T) {
	tests := map[string]string{
		"CN=Engineering,OU=Groups,DC=Example,DC=Com":         "cn=engineering,ou=groups,dc=example,dc=com",
		" cn = Sales EMEA , ou=Groups ,dc=example, dc=com  ": "cn=sales emea,ou=groups,dc=example,dc=com",
		`cn=Smith\, John,ou=People`:                          `cn=smith\, john,ou=people`,
		`cn=Trailing\ ,ou=x`:                                 `cn=trailing\ ,ou=x`,
		"cn=a,ou=b":                                          "cn=a,ou=b",
	}
	for in, want := range tests {
		if got := normalizeDN(in); got != want {
			t.Errorf("normalizeDN(%q) = %q, want %q", in, got, want)
		}
		if got := normalizeDN(want); got != want {
			t.Errorf("normalizeDN is not idempotent on %q: %q", want, got)
		}
	}
}

// resolveAll feeds g to idx two groups per call, each group's members in two halves (as
// AD's ranged retrieval adds them), resolves requested and looks up dns.
func resolveAll(t *testing.T, idx MembershipIndex, g groupGraph, requested, dns []string) (map[string][]int, []string) {
	t.Helper()
	ctx := context.Background()
	var firsts, rests []GroupMembers
	for _, dn := range slices.Sorted(maps.Keys(g)) {
		half := len(g[dn]) / 2
		firsts = append(firsts, GroupMembers{DN: dn, Members: g[dn][:half]})
		rests = append(rests, GroupMembers{DN: dn, Members: g[dn][half:]})
	}
	for page := range slices.Chunk(append(firsts, rests...), 2) {
		if err := idx.AddGroups(ctx, page); err != nil {
			t.Fatal(err)
		}
	}
	missing, err := idx.Resolve(ctx, requested)
	if err != nil {
		t.Fatal(err)
	}
	got, err := idx.Lookup(ctx, dns)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return got, missing
}

func TestMemoryIndexFollowsNestingAndCycles(t *testing.T) {
	g := groupGraph{
		"cn=top":   {"cn=mid", "uid=a"},
		"cn=mid":   {"cn=leaf"},
		"cn=leaf":  {"uid=b", "uid=c", "cn=top"}, // cycle back to the top
		"cn=x":     {"cn=y", "uid=d"},
		"cn=y":     {"cn=x", "uid=c"}, // x and y contain each other
		"cn=self":  {"cn=self"},       // an empty groupOfNames listing itself
		"cn=other": {"uid=e"},
		"cn=empty": {},
	}
	users := []string{"uid=a", "uid=b", "uid=c", "uid=d", "uid=e", "uid=nobody"}
	got, missing := resolveAll(t, NewMemoryIndex(), g, []string{"cn=empty", "cn=gone", "cn=leaf", "cn=self", "cn=top", "cn=x"}, users)
	want := map[string][]int{
		"uid=a": {2, 4}, // leaf reaches top through the cycle
		"uid=b": {2, 4},
		"uid=c": {2, 4, 5},
		"uid=d": {5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("memberships = %v, want %v", got, want)
	}
	if want := []string{"cn=gone"}; !reflect.DeepEqual(missing, want) {
		t.Errorf("missing = %v, want %v (an empty group is not missing)", missing, want)
	}

	// Lookup answers for the DNs asked, not for every member.
	got, _ = resolveAll(t, NewMemoryIndex(), g, []string{"cn=top"}, []string{"uid=b", "cn=mid", "uid=e"})
	if want := map[string][]int{"uid=b": {0}}; !reflect.DeepEqual(got, want) {
		t.Errorf("lookup of b, a group and a non-member = %v, want %v", got, want)
	}
}

func TestMemoryIndexDeepChain(t *testing.T) {
	g := groupGraph{}
	const depth = 50
	var users []string
	for i := range depth {
		g[fmt.Sprintf("cn=g%d", i)] = []string{fmt.Sprintf("cn=g%d", i+1), fmt.Sprintf("uid=u%d", i)}
		users = append(users, fmt.Sprintf("uid=u%d", i))
	}
	g[fmt.Sprintf("cn=g%d", depth)] = []string{"uid=bottom"}
	got, _ := resolveAll(t, NewMemoryIndex(), g, []string{"cn=g0"}, append(users, "uid=bottom"))
	if len(got) != depth+1 {
		t.Errorf("got %d users, want %d", len(got), depth+1)
	}
	if _, ok := got["uid=bottom"]; !ok {
		t.Error("user at depth 51 not found")
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	ok := Config{URL: "ldap://127.0.0.1:389", BindDN: "cn=admin,dc=x", BindPassword: "pw", BaseDN: "dc=x", AllowPlaintextBind: true}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		mutate func(*Config)
		field  string
	}{
		{func(c *Config) { c.URL = "" }, "URL"},
		{func(c *Config) { c.URL = "http://x" }, "URL"},
		{func(c *Config) { c.BaseDN = "" }, "BaseDN"},
		{func(c *Config) { c.BindPassword = "" }, "BindPassword"},
		{func(c *Config) { c.Profile = "novell" }, "Profile"},
		{func(c *Config) { c.DisabledAttribute = "employeeType" }, "DisabledValue"},
		{func(c *Config) { c.PageSize = -1 }, "PageSize"},
		{func(c *Config) { c.Timeout = -1 }, "Timeout"},
		{func(c *Config) { c.URL, c.StartTLS = "ldaps://x", true }, "StartTLS"},
		{func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "CAFile"},
		{func(c *Config) { c.StartTLS, c.CAFile = true, "/nonexistent/ca.pem" }, "directory.caFile (LDAP_CA_FILE) /nonexistent/ca.pem"},
		{func(c *Config) { c.ServerName = "dc1.corp" }, "ServerName"},
		{func(c *Config) { c.InChain = true }, "InChain"},
	}
	for _, tc := range tests {
		c := ok
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: err = %v, want one naming %s", tc.field, err, tc.field)
		}
	}
}

func TestConfigDefaultsPerProfile(t *testing.T) {
	o := Config{}.withDefaults()
	if o.UserNameAttribute != "mail" || o.DisabledAttribute != "employeeType" || o.DisabledValue != "disabled" ||
		o.PageSize != 500 || o.idAttribute() != "entryUUID" {
		t.Errorf("openldap defaults: %+v", o)
	}
	a := Config{Profile: ProfileAD}.withDefaults()
	if a.UserNameAttribute != "userPrincipalName" || a.DisabledAttribute != "" || a.idAttribute() != "objectGUID" ||
		!strings.Contains(a.UserFilter, "objectClass=user") || a.GroupFilter != "(objectClass=group)" {
		t.Errorf("ad defaults: %+v", a)
	}
	attrs := (&Reader{cfg: a}).userAttributes([]string{"department"})
	sort.Strings(attrs)
	for _, want := range []string{"department", "objectGUID", "userAccountControl", "userPrincipalName"} {
		if i := sort.SearchStrings(attrs, want); i == len(attrs) || attrs[i] != want {
			t.Errorf("ad user attributes %v lack %s", attrs, want)
		}
	}
}

func TestConfigHidesPassword(t *testing.T) {
	c := Config{URL: "ldap://x", BindDN: "cn=a", BindPassword: "hunter2-secret", BaseDN: "dc=x"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("formatted config shows the password: %s", s)
		}
	}
}

func TestUserOfADProfile(t *testing.T) {
	r := &Reader{cfg: Config{Profile: ProfileAD}.withDefaults()}
	guid := string([]byte{0xE0, 0x04, 0x25, 0x3F, 0x89, 0x4F, 0xD3, 0x11, 0x9A, 0x0C, 0x03, 0x05, 0xE8, 0x2C, 0x33, 0x01})
	entry := func(uac string) *ldap.Entry {
		return ldap.NewEntry("CN=Ann Lee,OU=Staff,DC=corp,DC=local", map[string][]string{
			"objectGUID":         {guid},
			"userPrincipalName":  {"ann@corp.example"},
			"mail":               {"ann.lee@corp.example"},
			"userAccountControl": {uac},
			"department":         {"Sales"},
		})
	}
	u, skip, unreadable := r.userOf(entry("512"), []string{"department", "title"})
	if skip != "" || unreadable != "" {
		t.Fatalf("skip %q, unreadable %q", skip, unreadable)
	}
	want := User{ExternalID: "3f2504e0-4f89-11d3-9a0c-0305e82c3301", DN: "CN=Ann Lee,OU=Staff,DC=corp,DC=local",
		UserName: "ann@corp.example", Email: "ann.lee@corp.example", Attributes: map[string]string{"department": "Sales"}}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("user = %+v, want %+v", u, want)
	}
	if u, _, _ := r.userOf(entry("514"), nil); !u.Disabled {
		t.Error("userAccountControl 514 (ACCOUNTDISABLE) not flagged disabled")
	}
	// An unreadable userAccountControl counts as disabled: out of scope, the safe side.
	if u, skip, unreadable := r.userOf(entry("lots"), nil); !u.Disabled || skip != "" || unreadable != "userAccountControl" ||
		u.ExternalID != want.ExternalID || len(u.Problems) != 0 {
		t.Errorf("bad userAccountControl: user %+v, skip %q, unreadable %q; want it disabled", u, skip, unreadable)
	}
	noID := ldap.NewEntry("CN=x,DC=corp", map[string][]string{"userPrincipalName": {"x@corp"}})
	if _, skip, _ := r.userOf(noID, nil); skip != SkipNoObjectGUID {
		t.Errorf("user without objectGUID: skip = %q, want %q", skip, SkipNoObjectGUID)
	}
}

func TestFollowRangesReadsEveryRange(t *testing.T) {
	// A group of 3500 members, served 1500 at a time as AD does.
	all := make([]string, 3500)
	for i := range all {
		all[i] = fmt.Sprintf("cn=u%d,dc=corp", i)
	}
	var asked []string
	fetch := func(desc string) ([]*ldap.EntryAttribute, error) {
		asked = append(asked, desc)
		r, ok, err := parseRangedAttr(desc)
		if err != nil || !ok || !r.Last {
			t.Fatalf("asked for %q, want member;range=<n>-*", desc)
		}
		hi := min(r.Low+1500, len(all)) - 1
		name := fmt.Sprintf("member;range=%d-%d", r.Low, hi)
		if hi == len(all)-1 {
			name = fmt.Sprintf("member;range=%d-*", r.Low)
		}
		return []*ldap.EntryAttribute{ldap.NewEntryAttribute(name, all[r.Low:hi+1])}, nil
	}
	first, _, _ := parseRangedAttr("member;range=0-1499")
	got := append([]string{}, all[:1500]...)
	var added []int
	err := followRanges(first, 0, fetch, func(values []string) error {
		added = append(added, len(values))
		got = append(got, values...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, all) {
		t.Errorf("got %d members, want %d in order", len(got), len(all))
	}
	if want := []string{"member;range=1500-*", "member;range=3000-*"}; !reflect.DeepEqual(asked, want) {
		t.Errorf("asked for %v, want %v", asked, want)
	}
	if want := []int{1500, 500}; !reflect.DeepEqual(added, want) {
		t.Errorf("values handed on in parts of %v, want one part per range %v", added, want)
	}

	gap := func(string) ([]*ldap.EntryAttribute, error) {
		return []*ldap.EntryAttribute{ldap.NewEntryAttribute("member;range=1600-*", []string{"x"})}, nil
	}
	if err := followRanges(first, 0, gap, func([]string) error { return nil }); err == nil || !strings.Contains(err.Error(), "1600") {
		t.Errorf("range gap: err = %v, want one naming the range", err)
	}
	asked = nil
	full := errors.New("index full")
	if err := followRanges(first, 0, fetch, func([]string) error { return full }); !errors.Is(err, full) || len(asked) != 1 {
		t.Errorf("add failing: err = %v after %d fetches, want the add error after 1", err, len(asked))
	}
}

func TestConfigRefusesPlaintextBind(t *testing.T) {
	// Loopback is not exempt: the password is the same one used for the real directory.
	for _, url := range []string{"ldap://127.0.0.1:389", "ldap://localhost", "ldap://[::1]:1389", "ldap://dc1.corp.example:389"} {
		c := Config{URL: url, BindDN: "cn=svc,dc=x", BindPassword: "pw-secret", BaseDN: "dc=x"}
		err := c.Validate()
		want := "directory " + url + ": refusing to send the bind password in clear; " +
			"use ldaps://, directory.startTLS (LDAP_START_TLS=true), or directory.allowPlaintextBind (LDAP_ALLOW_PLAINTEXT_BIND=true)"
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %q", url, err, want)
		}
		if _, err := Dial(context.Background(), c); err == nil || err.Error() != want {
			t.Errorf("Dial %s: err = %v, want %q (before connecting)", url, err, want)
		}
	}
	fine := []Config{
		{URL: "ldap://127.0.0.1", BaseDN: "dc=x"}, // anonymous: no password to protect
		{URL: "ldaps://dc1", BindDN: "cn=svc", BindPassword: "pw", BaseDN: "dc=x"},
		{URL: "ldap://dc1", BindDN: "cn=svc", BindPassword: "pw", BaseDN: "dc=x", StartTLS: true},
		{URL: "ldap://dc1", BindDN: "cn=svc", BindPassword: "pw", BaseDN: "dc=x", AllowPlaintextBind: true},
		{URL: "ldaps://dc1", BindDN: "cn=svc", BindPassword: "pw", BaseDN: "dc=x", ServerName: "dc1.corp", InChain: true, Profile: ProfileAD},
	}
	for _, c := range fine {
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
}

func TestConfigCAFileMustHoldCertificates(t *testing.T) {
	path := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(path, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{URL: "ldaps://dc1", BaseDN: "dc=x", CAFile: path}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "directory.caFile (LDAP_CA_FILE) "+path+": no PEM certificate") {
		t.Errorf("err = %v, want one saying the CA file holds no certificate", err)
	}
}

func TestAccountExpired(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ft := func(t time.Time) string { // AD FILETIME: 100ns since 1601
		return strconv.FormatInt((t.Unix()+11644473600)*1e7+int64(t.Nanosecond()/100), 10)
	}
	tests := []struct {
		v       string
		expired bool
	}{
		{"0", false},
		{"9223372036854775807", false}, // 0x7FFFFFFFFFFFFFFF: never
		{"-1", false},
		{ft(now.Add(-time.Hour)), true},
		{ft(now), true},
		{ft(now.Add(time.Second)), false},
		{"129000000000000000", true}, // 2009
		{ft(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)), false},
	}
	for _, tc := range tests {
		got, err := accountExpired(tc.v, now)
		if err != nil || got != tc.expired {
			t.Errorf("accountExpired(%s) = %v, %v; want %v", tc.v, got, err, tc.expired)
		}
	}
	if _, err := accountExpired("soon", now); err == nil || !strings.Contains(err.Error(), "accountExpires") {
		t.Errorf("accountExpired(soon): err = %v", err)
	}
	// 2024-01-01T00:00:00Z, as AD shows it.
	if got, _ := accountExpired("133485408000000000", time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC)); got {
		t.Error("2024-01-01 expired on 2023-12-31")
	}
	if got, _ := accountExpired("133485408000000000", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); !got {
		t.Error("2024-01-01 not expired on 2024-01-01")
	}
}

func TestUserOfADAccountExpires(t *testing.T) {
	r := &Reader{cfg: Config{Profile: ProfileAD}.withDefaults(), now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}
	guid := string(make([]byte, 16))
	for v, disabled := range map[string]bool{"0": false, "9223372036854775807": false, "129000000000000000": true, "": false} {
		attrs := map[string][]string{"objectGUID": {guid}, "userAccountControl": {"512"}}
		if v != "" {
			attrs["accountExpires"] = []string{v}
		}
		u, skip, unreadable := r.userOf(ldap.NewEntry("CN=x,DC=corp", attrs), nil)
		if skip != "" || unreadable != "" || u.Disabled != disabled {
			t.Errorf("accountExpires %q: Disabled = %v (skip %q, unreadable %q); want %v", v, u.Disabled, skip, unreadable, disabled)
		}
	}
	bad := map[string][]string{"objectGUID": {guid}, "accountExpires": {"x"}}
	if u, _, unreadable := r.userOf(ldap.NewEntry("CN=x,DC=corp", bad), nil); !u.Disabled || unreadable != "accountExpires" {
		t.Errorf("bad accountExpires: Disabled = %v, unreadable %q; want disabled", u.Disabled, unreadable)
	}
}

func TestExplainBindNamesADReason(t *testing.T) {
	ad := &ldap.Error{ResultCode: ldap.LDAPResultInvalidCredentials,
		Err: errors.New("80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1")}
	err := explainBind(ad)
	for _, want := range []string{"invalid credentials", "data 52e", "wrong password", "LDAP_BIND_DN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("explainBind(52e) = %v, want %q in it", err, want)
		}
	}
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Error("explainBind lost the LDAP error")
	}
	// The account's state is no matter of the configured password: each says what to do.
	for code, wants := range map[string][]string{
		"775": {"locked out", "unlock"},
		"533": {"disabled", "enable the service account"},
		"532": {"password has expired", "set a new password"},
		"773": {"must change its password", "set a new password"},
		"701": {"account has expired", "accountExpires"},
	} {
		ad := &ldap.Error{ResultCode: 49, Err: errors.New("80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data " + code + ", v3839")}
		err := explainBind(ad)
		for _, want := range append(wants, "data "+code) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("explainBind(%s) = %v, want %q in it", code, err, want)
			}
		}
		if strings.Contains(err.Error(), "check directory.bindDN") {
			t.Errorf("explainBind(%s) = %v: the bind DN and password are right", code, err)
		}
	}
	strong := &ldap.Error{ResultCode: ldap.LDAPResultStrongAuthRequired, Err: errors.New("BindSimple: Transport encryption required.")}
	if err := explainBind(strong); !strings.Contains(err.Error(), "LDAP_START_TLS") {
		t.Errorf("explainBind(strongerAuthRequired) = %v", err)
	}
}

func TestFollowRangesWithASize(t *testing.T) {
	var asked []string
	fetch := func(desc string) ([]*ldap.EntryAttribute, error) {
		asked = append(asked, desc)
		r, _, _ := parseRangedAttr(desc)
		name := fmt.Sprintf("member;range=%d-%d", r.Low, r.High)
		if r.High >= 2999 {
			name = fmt.Sprintf("member;range=%d-*", r.Low)
		}
		return []*ldap.EntryAttribute{ldap.NewEntryAttribute(name, make([]string, 1000))}, nil
	}
	first, _, _ := parseRangedAttr("member;range=0-999")
	n := 1000
	if err := followRanges(first, 1000, fetch, func(v []string) error { n += len(v); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"member;range=1000-1999", "member;range=2000-2999"}; !reflect.DeepEqual(asked, want) || n != 3000 {
		t.Errorf("asked %v (%d values), want %v (3000)", asked, n, want)
	}
}

// A syncprov cookie names one mark per server; an entry is beyond the cookie when its CSN is
// newer than its own server's mark, or its server has none (multi-provider directories).
func TestEntryCSNBeyondTheCookie(t *testing.T) {
	marks := cookieCSNs([]byte("rid=000,sid=001,csn=20261202080000.000000Z#000000#001#000000;20261202070000.000000Z#000000#002#000000"))
	if len(marks) != 2 {
		t.Fatalf("marks of a two-server cookie: %v", marks)
	}
	for csn, want := range map[string]bool{
		"20261202080000.000000Z#000000#001#000000": false, // the mark itself: sent
		"20261202075959.999999Z#000000#001#000000": false,
		"20261202080000.000000Z#000001#001#000000": true,
		"20261202073000.000000Z#000000#002#000000": true, // older than server 1's mark, newer than its own
		"20261202060000.000000Z#000000#003#000000": true, // a server without a mark
	} {
		if got := beyond(marks, csn); got != want {
			t.Errorf("beyond(%s) = %v, want %v", csn, got, want)
		}
	}
	if m := cookieCSNs([]byte("rid=000")); len(m) != 0 {
		t.Errorf("a cookie without a CSN: marks %v", m)
	}
}
