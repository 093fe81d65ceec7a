package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/vocab"
)

// accountView is what a user of the target sees of an account.
type accountView struct {
	UserName, Role, Template string
	Active                   bool
	Products                 []string
}

// accountsByExternalID reads the linked accounts back from the target over SCIM.
func accountsByExternalID(accounts map[string]*scim.User) map[string]accountView {
	out := map[string]accountView{}
	for _, u := range accounts {
		if u.ExternalID == "" {
			continue
		}
		v := accountView{UserName: u.UserName, Template: u.SettingsTemplate, Active: u.Active, Products: u.Products}
		if len(u.Roles) > 0 {
			v.Role = u.Roles[0]
		}
		out[u.ExternalID] = v
	}
	return out
}

// A ruled group renamed and moved to another OU in the directory keeps its rule: after the
// next sync its members keep their accounts and entitlements in the target, nobody is
// suspended, and `starter rules list` shows the group's new DN.
func TestRuledGroupRenamedAndMovedOnOpenLDAP(t *testing.T) {
	d := demo.Generate(120, 5)
	s := newStack(t, d)
	first := s.runOnce("initial")
	require.Equal(t, vocab.RunSucceeded, first.Status)
	require.Equal(t, 120, first.Outcomes[vocab.Created])
	before := accountsByExternalID(s.checkTarget())
	require.Len(t, before, 120)

	ruled := d.Rules[0].GroupDN
	rs, err := s.store.Rules(s.ctx, org)
	require.NoError(t, err)
	require.NotEmpty(t, rs[0].GroupID, "the sync stored the group's entryUUID in its rule")

	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	regions := "ou=Regions," + d.Suffix
	add := ldap.NewAddRequest(regions, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	add.Attribute("ou", []string{"Regions"})
	require.NoError(t, conn.Add(add))
	require.NoError(t, conn.ModifyDN(ldap.NewModifyDNRequest(ruled, "cn=Division Renamed", true, regions)))
	newDN := rules.NormalizeDN("cn=Division Renamed," + regions)

	// Before the next sync, explain already finds the group by its ID and shows where it is.
	var member string
	for _, v := range before {
		member = v.UserName
		break
	}
	e := s.explain(member)
	require.True(t, e.Explanation.InScope, "explain: still in scope")
	require.Len(t, e.Explanation.MatchedRules, 1)
	require.Equal(t, newDN, e.Explanation.MatchedRules[0].GroupDN, "explain shows the group's current DN")

	second := s.runOnce("after-rename")
	require.Equal(t, vocab.RunSucceeded, second.Status, "run error: %s", second.Error)
	require.Zero(t, second.Outcomes[vocab.Suspended], "nobody suspended")
	require.Equal(t, first.Plan.InScope, second.Plan.InScope, "the group's members are still in scope")
	require.Equal(t, before, accountsByExternalID(s.checkTarget()), "accounts and entitlements unchanged in the target")

	var listed []rules.Rule
	require.NoError(t, json.Unmarshal([]byte(s.cliOK("rules", "list", "--json")), &listed))
	require.Equal(t, newDN, listed[0].GroupDN, "rules list shows the group's current DN")
	require.Equal(t, rs[0].GroupID, listed[0].GroupID)
	require.False(t, slices.ContainsFunc(listed, func(r rules.Rule) bool { return strings.EqualFold(r.GroupDN, ruled) }))

	// rules add keeps the entryUUID the directory check finds, before any sync.
	dept := "cn=Dept-001,ou=Groups," + d.Suffix
	res, err := conn.Search(ldap.NewSearchRequest(dept, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"entryUUID"}, nil))
	require.NoError(t, err)
	uuid := res.Entries[0].GetAttributeValue("entryUUID")
	require.NotEmpty(t, uuid)
	require.NoError(t, json.Unmarshal([]byte(s.cliOK("rules", "add", "--group", dept, "--role", demo.Member, "--json")), &listed))
	require.Equal(t, uuid, listed[len(listed)-1].GroupID, "the new rule holds its group's entryUUID")
}
