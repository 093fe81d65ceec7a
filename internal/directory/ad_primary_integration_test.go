package directory_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
)

// AD keeps a user out of its primary group's member attribute (primaryGroupID holds the
// group's RID instead), and LDAP_MATCHING_RULE_IN_CHAIN leaves it out too. A rule on
// Domain Users, or on any group set as a user's primary group, must still match the user.
func TestADPrimaryGroupMembership(t *testing.T) {
	dc := devstacktest.SambaDC(t)
	ctx := context.Background()
	root := dc.BaseDN()
	base := "OU=UsersyncPrimary," + root
	var (
		pat        = "CN=Pat Primary," + base // primary group: Staff
		quinn      = "CN=Quinn Default," + base
		staff      = "CN=Staff," + base
		everyone   = "CN=Everyone," + base // holds Staff and Domain Users as members
		domainUser = "CN=Domain Users,CN=Users," + root
	)
	c, err := adminConn(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	add := func(dn string, attrs map[string][]string) {
		r := addRequest(dn, attrs)
		if err := c.Add(r); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	user := func(dn, sam string) {
		add(dn, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {sam},
			"userPrincipalName": {sam + adUPNSuffix}, "userAccountControl": {"544"}})
	}
	add(base, map[string][]string{"objectClass": {"organizationalUnit"}})
	user(pat, "pat")
	user(quinn, "quinn")
	add(staff, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"staff"}, "member": {pat}})
	add(everyone, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"everyone"}, "member": {staff, domainUser}})
	// Staff becomes pat's primary group: AD moves pat out of Staff's member attribute.
	res, err := c.Search(ldap.NewSearchRequest(staff, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read Staff's objectSid: %v", err)
	}
	sid := res.Entries[0].GetRawAttributeValue("objectSid")
	rid := binary.LittleEndian.Uint32(sid[len(sid)-4:])
	m := ldap.NewModifyRequest(pat, nil)
	m.Replace("primaryGroupID", []string{fmt.Sprint(rid)})
	if err := c.Modify(m); err != nil {
		t.Fatalf("set pat's primaryGroupID to %d: %v", rid, err)
	}
	res, err = c.Search(ldap.NewSearchRequest(staff, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"member"}, nil))
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].GetAttributeValues("member")) != 0 {
		t.Fatalf("Staff's member attribute after the primaryGroupID change: %v, %v; want it empty", res, err)
	}

	// The whole domain as BaseDN, so that Domain Users (CN=Users) is read too.
	cfg := directory.Config{URL: dc.LDAPSURL(), CAFile: dc.CAFile(), BindDN: dc.AdminDN(), BindPassword: dc.AdminPassword,
		BaseDN: root, Profile: directory.ProfileAD, PageSize: 400}
	requested := []string{domainUser, staff, everyone}
	expanded, es := adSnapshot(t, cfg, requested, nil)
	inChainCfg := cfg
	inChainCfg.InChain = true
	inChain, cs := adSnapshot(t, inChainCfg, requested, nil)

	for name, got := range map[string]map[string]directory.User{"expansion": expanded, "in chain": inChain} {
		for dn, want := range map[string][]string{
			// Primary group Staff, nested in Everyone; AD made pat a member of Domain Users (its
			// primary group before) when the primary group changed.
			pat:          norm(staff, everyone, domainUser),
			quinn:        norm(domainUser, everyone), // primary group Domain Users (513), nested in Everyone
			dc.AdminDN(): norm(domainUser, everyone), // a member of Domain Users only by primaryGroupID, too
		} {
			if u, ok := got[dn]; !ok {
				t.Errorf("%s: %s not emitted; want Groups %v", name, dn, want)
			} else if !reflect.DeepEqual(u.Groups, want) {
				t.Errorf("%s: %s has Groups %v, want %v", name, dn, u.Groups, want)
			}
		}
		// A rule on Domain Users matches quinn, a rule on Staff matches pat.
		for dn, g := range map[string]string{quinn: domainUser, pat: staff} {
			rs := []rules.Rule{{ID: 1, Priority: 1, GroupDN: rules.NormalizeDN(g), Role: "Member"}}
			if _, ok := rules.Resolve(rs, got[dn].Groups); !ok {
				t.Errorf("%s: a rule on %s does not match %s", name, g, dn)
			}
		}
	}
	sameSnapshots(t, expanded, inChain, es, cs)
}
