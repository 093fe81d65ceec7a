package devstack_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack"
)

const readerDN = "cn=usersync-reader,dc=example,dc=com"

// composeReaderACL is the access rule compose's OpenLDAP gets (its olcAccess value without {n}).
func composeReaderACL(t *testing.T) string {
	b, err := os.ReadFile("../../scripts/compose-ldap/50-usersync-reader-acl.ldif")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^olcAccess: \{1\}(.+)$`).FindStringSubmatch(string(b))
	require.NotNil(t, m, "the LDIF adds an olcAccess rule at {1}")
	return m[1]
}

// compose's read-only service account, under the rules compose's OpenLDAP has (the image's
// two, ours between them), on a local slapd: it reads the users, not their passwords, and
// cannot change anything.
func TestComposeReaderAccountReadsAndCannotWrite(t *testing.T) {
	requireSlapd(t)
	const admin = "cn=admin,dc=example,dc=com"
	s := &devstack.Slapd{Dir: t.TempDir(), Suffix: "dc=example,dc=com", AdminDN: admin, AdminPassword: "admin-pw",
		Access: []string{
			// osixia/openldap 1.5.0's rules {0} and {1}; ours goes in at {1}.
			`to attrs=userPassword,shadowLastChange by self write by dn="` + admin + `" write by anonymous auth by * none`,
			composeReaderACL(t),
			`to * by self read by dn="` + admin + `" write by * none`,
		}}
	ctx := context.Background()
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { _ = s.Stop() })

	base := ldap.NewAddRequest("dc=example,dc=com", nil)
	base.Attribute("objectClass", []string{"top", "dcObject", "organization"})
	base.Attribute("dc", []string{"example"})
	base.Attribute("o", []string{"Example"})
	user := ldap.NewAddRequest("uid=anna,dc=example,dc=com", nil)
	user.Attribute("objectClass", []string{"inetOrgPerson"})
	user.Attribute("uid", []string{"anna"})
	user.Attribute("cn", []string{"Anna"})
	user.Attribute("sn", []string{"Schmidt"})
	user.Attribute("mail", []string{"anna@example.com"})
	user.Attribute("userPassword", []string{"anna-pw"})
	reader, err := devstack.ReaderEntry(readerDN, "reader-pw")
	require.NoError(t, err)
	require.NoError(t, devstack.LoadEntries(ctx, s.URL(), admin, "admin-pw", []*ldap.AddRequest{base, user, reader}))

	c, err := ldap.DialURL(s.URL())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Bind(readerDN, "reader-pw"))
	res, err := c.Search(ldap.NewSearchRequest("dc=example,dc=com", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"mail", "userPassword"}, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 1, "the reader finds the user")
	require.Equal(t, "anna@example.com", res.Entries[0].GetAttributeValue("mail"))
	require.Empty(t, res.Entries[0].GetAttributeValue("userPassword"), "but not the password")

	mod := ldap.NewModifyRequest("uid=anna,dc=example,dc=com", nil)
	mod.Replace("mail", []string{"mallory@example.com"})
	require.True(t, ldap.IsErrorWithCode(c.Modify(mod), ldap.LDAPResultInsufficientAccessRights), "modify refused")
	add := ldap.NewAddRequest("uid=mallory,dc=example,dc=com", nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{"mallory"})
	add.Attribute("cn", []string{"M"})
	add.Attribute("sn", []string{"M"})
	require.True(t, ldap.IsErrorWithCode(c.Add(add), ldap.LDAPResultInsufficientAccessRights), "add refused")
	require.True(t, ldap.IsErrorWithCode(c.Del(ldap.NewDelRequest("uid=anna,dc=example,dc=com", nil)),
		ldap.LDAPResultInsufficientAccessRights), "delete refused")
	require.False(t, strings.Contains(composeReaderACL(t), "write"), "the rule grants no write")
}
