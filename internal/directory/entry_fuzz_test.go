package directory

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// Whatever values a directory entry holds, reading it never panics, and the user it gives
// can be stored as it is (valid UTF-8, no NUL): one bad value fails that user, never the read.
func FuzzUserOfEntry(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), "ann@acme.test", "Ann", "514", "133000000000000000", "E001", false)
	f.Add([]byte{1, 2, 3}, "b\x00b@acme.test", "\u202eAnn", "x", "-1", "\xff", true)
	f.Add([]byte{}, "", "", "", "9223372036854775807", "", false)
	f.Fuzz(func(t *testing.T, id []byte, mail, given, uac, expires, extra string, ad bool) {
		cfg := Config{URL: "ldap://127.0.0.1", BaseDN: "dc=x", Profile: ProfileOpenLDAP}
		attrs := map[string][]string{"mail": {mail}, "givenName": {given}, "employeeNumber": {extra, mail}}
		if ad {
			cfg.Profile = ProfileAD
			attrs["userAccountControl"] = []string{uac}
			attrs["accountExpires"] = []string{expires}
			attrs["userPrincipalName"] = []string{mail}
			attrs["objectGUID"] = []string{string(id)}
		} else {
			attrs["entryUUID"] = []string{string(id)}
		}
		r := &Reader{cfg: cfg.withDefaults()}
		e := ldap.NewEntry("cn=fuzz,dc=x", attrs)
		u, skip, _ := r.userOf(e, []string{"employeeNumber"})
		if skip != "" {
			return
		}
		if !userIsClean(u) {
			t.Fatalf("user %#v is not storable", u)
		}
		if u.ExternalID == "" {
			t.Fatal("a user without an externalId")
		}
	})
}
