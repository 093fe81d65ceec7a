package directory_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
)

// Delta reads on AD (issue 13): after one user's change (renamed, disabled, added to a ruled
// group, removed from one, given a ruled group as primary group, deleted) the read's changes
// are known, they touch that user only, and the delta snapshot gives it what the full
// snapshot gives (groups by nesting and by primary group, Domain Users included; attributes).
// A group created or deleted touches its members: it is nobody's primary group but for users
// whose own entry changed (AD refuses to delete a user's primary group). A change whose users
// no DN names (a group renamed, a group nested in another, which holds the users whose
// primary group it is) gives no delta snapshot.
func TestADDeltaSnapshotAgreesWithTheFullSnapshot(t *testing.T) {
	dc := devstacktest.SambaDC(t)
	ctx := context.Background()
	root := dc.BaseDN()
	base := "OU=UsersyncDelta," + root
	people, groupsOU := "OU=People,"+base, "OU=Groups,"+base
	domainUsers := "CN=Domain Users,CN=Users," + root
	c, err := adminConn(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	do := func(what string, err error) { t.Helper(); must(t, what, err) }
	add := func(dn string, attrs map[string][]string) { t.Helper(); do("add "+dn, c.Add(addRequest(dn, attrs))) }
	for _, ou := range []string{base, people, groupsOU} {
		add(ou, map[string][]string{"objectClass": {"organizationalUnit"}})
	}
	names := []string{"Ren", "Dis", "Join", "Leave", "Prim", "Del", "Stay1", "Stay2", "Stay3"}
	dns := map[string]string{}
	for _, n := range names {
		dns[n] = "CN=" + n + "," + people
		sam := "delta-" + strings.ToLower(n)
		add(dns[n], map[string][]string{"objectClass": {"user"}, "sAMAccountName": {sam},
			"userPrincipalName": {sam + adUPNSuffix}, "userAccountControl": {"544"}, "displayName": {n}})
	}
	team, staff, everyone := "CN=Team,"+groupsOU, "CN=Staff,"+groupsOU, "CN=Everyone,"+groupsOU
	add(team, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"delta-team"},
		"member": {dns["Ren"], dns["Dis"], dns["Leave"], dns["Del"], dns["Stay1"]}})
	add(staff, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"delta-staff"}, "member": {dns["Stay2"]}})
	add(everyone, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"delta-everyone"}, "member": {team}})

	// The whole domain, so that Domain Users (CN=Users) is read too; every group is ruled.
	cfg := directory.Config{URL: dc.LDAPSURL(), CAFile: dc.CAFile(), BindDN: dc.AdminDN(), BindPassword: dc.AdminPassword,
		BaseDN: root, Profile: directory.ProfileAD, PageSize: 100}
	r := mustDial(t, cfg)
	extra := []string{"sAMAccountName"}
	m := newMemMirror()
	if _, err := r.SyncMirror(ctx, m, extra, 0); err != nil {
		t.Fatal(err)
	}
	full, _, _, _ := snapshotsOf(t, r, m, extra)
	ids := map[string]string{}
	for _, u := range full {
		for n, dn := range dns {
			if strings.EqualFold(u.DN, dn) {
				ids[n] = u.ExternalID
			}
		}
	}
	if len(ids) != len(names) {
		t.Fatalf("the full snapshot holds %v of %v", ids, names)
	}

	// read reads the changes and takes the delta snapshot of them (err: SnapshotChanges').
	read := func(what string) (st directory.SyncStats, full, delta map[string]directory.User, touched []string, err error) {
		t.Helper()
		if st, err = r.SyncMirror(ctx, m, extra, 0); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if st.Full {
			t.Fatalf("%s: %+v, want an incremental read", what, st)
		}
		full, mirrored, fs, ms := snapshotsOf(t, r, m, extra)
		sameSnapshot(t, what, full, mirrored, fs, ms)
		if st.Changes == nil {
			return st, full, nil, nil, nil
		}
		delta = map[string]directory.User{}
		_, touched, err = r.SnapshotChanges(ctx, m, mustGroups(t, r), extra, 0, st.Changes, func(us []directory.User) error {
			for _, u := range us {
				delta[u.ExternalID] = u
			}
			return nil
		})
		return st, full, delta, touched, err
	}
	// delta checks that the read's changes touch the users named, and that the delta
	// snapshot gives each the full snapshot's user (or none, as the full snapshot).
	delta := func(what string, want ...string) map[string]directory.User {
		t.Helper()
		st, full, delta, touched, err := read(what)
		if err != nil {
			t.Fatalf("%s: delta snapshot: %v", what, err)
		}
		if st.Changes == nil {
			t.Fatalf("%s: the read's changes are not known: %+v", what, st)
		}
		var wantIDs []string
		for _, n := range want {
			wantIDs = append(wantIDs, ids[n])
		}
		slices.Sort(wantIDs)
		if !slices.Equal(touched, wantIDs) {
			t.Errorf("%s: touched %v, want %v (%v)", what, touched, wantIDs, want)
		}
		for _, id := range touched {
			if !reflect.DeepEqual(delta[id], full[id]) {
				t.Errorf("%s: user %s: delta snapshot %+v, full snapshot %+v", what, id, delta[id], full[id])
			}
		}
		if len(delta) > len(touched) {
			t.Errorf("%s: the delta snapshot holds %d users, touched %d", what, len(delta), len(touched))
		}
		return full
	}
	groupsOf := func(users map[string]directory.User, n string) []string { return users[ids[n]].Groups }
	// Every user is in Domain Users (by primary group or member value), and so in BUILTIN\Users.
	withDomainUsers := func(dns ...string) []string {
		return norm(append(dns, domainUsers, "CN=Users,CN=Builtin,"+root)...)
	}

	delta("unchanged")
	do("rename Ren", c.ModifyDN(ldap.NewModifyDNRequest(dns["Ren"], "CN=Ren Renamed", true, "")))
	got := delta("a user renamed", "Ren")
	if u := got[ids["Ren"]]; !strings.EqualFold(u.DN, "CN=Ren Renamed,"+people) || !reflect.DeepEqual(u.Groups, withDomainUsers(everyone, team)) {
		t.Errorf("the renamed user: %+v", u)
	}
	dis := ldap.NewModifyRequest(dns["Dis"], nil)
	dis.Replace("userAccountControl", []string{"546"}) // ACCOUNTDISABLE
	do("disable Dis", c.Modify(dis))
	if got = delta("a user disabled", "Dis"); !got[ids["Dis"]].Disabled {
		t.Errorf("the disabled user: %+v", got[ids["Dis"]])
	}
	join := ldap.NewModifyRequest(team, nil)
	join.Add("member", []string{dns["Join"]})
	do("add Join to Team", c.Modify(join))
	if got = delta("a user added to a ruled group", "Join"); !reflect.DeepEqual(groupsOf(got, "Join"), withDomainUsers(everyone, team)) {
		t.Errorf("the user added to Team (in Everyone): %+v", got[ids["Join"]])
	}
	leave := ldap.NewModifyRequest(team, nil)
	leave.Delete("member", []string{dns["Leave"]})
	do("remove Leave from Team", c.Modify(leave))
	if got = delta("a user removed from a ruled group", "Leave"); !reflect.DeepEqual(groupsOf(got, "Leave"), withDomainUsers()) {
		t.Errorf("the user removed from Team: %+v, want Domain Users (its primary group) and what holds it", got[ids["Leave"]])
	}
	// Prim's primary group becomes Staff: AD moves it out of Staff's member values and into
	// Domain Users' (its primary group before).
	enter := ldap.NewModifyRequest(staff, nil)
	enter.Add("member", []string{dns["Prim"]})
	do("add Prim to Staff", c.Modify(enter))
	do("set Prim's primary group", c.Modify(primaryGroup(t, c, dns["Prim"], staff)))
	if got = delta("a user given a ruled group as primary group", "Prim"); !reflect.DeepEqual(groupsOf(got, "Prim"), withDomainUsers(staff)) {
		t.Errorf("the user whose primary group is Staff: %+v", got[ids["Prim"]])
	}
	do("delete Del", c.Del(ldap.NewDelRequest(dns["Del"], nil)))
	if got = delta("a user deleted", "Del"); len(got[ids["Del"]].Groups) > 0 {
		t.Errorf("the deleted user is in the full snapshot: %+v", got[ids["Del"]])
	}

	// Staff nested in Everyone: Prim (primary group Staff) is in Everyone now, and no member
	// value names it.
	nest := ldap.NewModifyRequest(everyone, nil)
	nest.Add("member", []string{staff})
	do("nest Staff in Everyone", c.Modify(nest))
	st, got, _, _, err := read("a group nested in a ruled group")
	if st.Changes == nil {
		t.Errorf("a nesting changed: the read's changes are not known: %+v", st)
	} else if !errors.Is(err, directory.ErrTooManyChanges) {
		t.Errorf("a nesting changed: SnapshotChanges: %v, want ErrTooManyChanges (take the full snapshot)", err)
	}
	if !reflect.DeepEqual(groupsOf(got, "Prim"), withDomainUsers(everyone, staff)) {
		t.Errorf("the user whose primary group is Staff, after Staff was nested in Everyone: %+v", got[ids["Prim"]])
	}
	// A group renamed: the rules name it by DN, and its primary-group users are not named.
	do("rename Staff", c.ModifyDN(ldap.NewModifyDNRequest(staff, "CN=Staff Renamed", true, "")))
	if st, got, _, _, _ = read("a group renamed"); st.Changes != nil {
		t.Errorf("a group renamed: the read's changes are known: %+v", st.Changes)
	}
	if !reflect.DeepEqual(groupsOf(got, "Prim"), withDomainUsers(everyone, "CN=Staff Renamed,"+groupsOU)) {
		t.Errorf("the user whose primary group was renamed: %+v", got[ids["Prim"]])
	}
	// A group created, and made the primary group of one of its members by the same read.
	newcomers := "CN=Newcomers," + groupsOU
	add(newcomers, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"delta-new"},
		"member": {dns["Stay1"], dns["Stay3"]}})
	do("set Stay1's primary group", c.Modify(primaryGroup(t, c, dns["Stay1"], newcomers)))
	got = delta("a group created", "Stay1", "Stay3")
	if !reflect.DeepEqual(groupsOf(got, "Stay1"), withDomainUsers(everyone, newcomers, team)) ||
		!reflect.DeepEqual(groupsOf(got, "Stay3"), withDomainUsers(newcomers)) {
		t.Errorf("the members of the group created (Stay1's primary group): %+v, %+v", got[ids["Stay1"]], got[ids["Stay3"]])
	}
	var refused *ldap.Error
	if err := c.Del(ldap.NewDelRequest(newcomers, nil)); !errors.As(err, &refused) {
		t.Fatalf("delete Stay1's primary group: %v, want refused", err)
	}
	do("give Stay1 its primary group back", c.Modify(primaryGroup(t, c, dns["Stay1"], domainUsers)))
	delta("a user given its primary group back", "Stay1")
	do("delete Newcomers", c.Del(ldap.NewDelRequest(newcomers, nil)))
	got = delta("a group deleted", "Stay1", "Stay3")
	if !reflect.DeepEqual(groupsOf(got, "Stay1"), withDomainUsers(everyone, team)) ||
		!reflect.DeepEqual(groupsOf(got, "Stay3"), withDomainUsers()) {
		t.Errorf("the members of the group deleted: %+v, %+v", got[ids["Stay1"]], got[ids["Stay3"]])
	}
	delta("unchanged again")
}

// primaryGroup is the modification that makes group the primary group of user (a member).
func primaryGroup(t *testing.T, c *ldap.Conn, user, group string) *ldap.ModifyRequest {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(group, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read the objectSid of %s: %v", group, err)
	}
	sid := res.Entries[0].GetRawAttributeValue("objectSid")
	m := ldap.NewModifyRequest(user, nil)
	m.Replace("primaryGroupID", []string{fmt.Sprint(binary.LittleEndian.Uint32(sid[len(sid)-4:]))})
	return m
}

// must fails the test with what when err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
