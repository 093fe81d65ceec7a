package directory_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
)

// Incremental reads of AD (uSNChanged marks of the DC): after adds, modifies, a rename,
// moves (inside and out of the base), a delete, a disable and membership changes (nested
// and primary group included), the snapshot taken from the mirror is the full read's, and
// the incremental read fetched entries in proportion to the changes (none for an unchanged
// directory).
func TestADIncrementalReadAgreesWithAFullRead(t *testing.T) {
	dc := devstacktest.SambaDC(t)
	ctx := context.Background()
	root := dc.BaseDN()
	base := "OU=UsersyncIncremental," + root
	outside := "OU=UsersyncIncrementalOutside," + root
	people, moved, groupsOU := "OU=People,"+base, "OU=Moved,"+base, "OU=Groups,"+base
	c, err := adminConn(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	do := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	add := func(dn string, attrs map[string][]string) {
		t.Helper()
		r := addRequest(dn, attrs)
		do("add "+dn, c.Add(r))
	}
	user := func(name string) string {
		t.Helper()
		dn := "CN=" + name + "," + people
		sam := "incr-" + strings.ToLower(name)
		add(dn, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {sam},
			"userPrincipalName": {sam + adUPNSuffix}, "userAccountControl": {"544"}, "displayName": {name}})
		return dn
	}
	for _, ou := range []string{base, people, moved, groupsOU, outside} {
		add(ou, map[string][]string{"objectClass": {"organizationalUnit"}})
	}
	ann, bob, cid, dot, eli, fay, gus, hal := user("Ann"), user("Bob"), user("Cid"), user("Dot"), user("Eli"), user("Fay"), user("Gus"), user("Hal")
	g1, g2, g3 := "CN=G1,"+groupsOU, "CN=G2,"+groupsOU, "CN=G3,"+groupsOU
	add(g2, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"incr-g2"}, "member": {cid, gus}})
	add(g1, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"incr-g1"}, "member": {ann, bob, dot, eli, fay, hal, g2}})
	add(g3, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"incr-g3"}})

	cfg := directory.Config{URL: dc.LDAPSURL(), CAFile: dc.CAFile(), BindDN: dc.AdminDN(), BindPassword: dc.AdminPassword,
		BaseDN: base, Profile: directory.ProfileAD, PageSize: 3}
	r := mustDial(t, cfg)
	extra := []string{"sAMAccountName"}
	m := newMemMirror()
	st, err := r.SyncMirror(ctx, m, extra, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Reason != "first read" || st.Entries != 11 {
		t.Errorf("first read: %+v, want a full read of 8 users and 3 groups", st)
	}
	full, mirrored, fs, ms := snapshotsOf(t, r, m, extra)
	sameSnapshot(t, "after the first read", full, mirrored, fs, ms)

	st, err = r.SyncMirror(ctx, m, extra, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unchanged directory: %d entries read, %d changed objects checked, %d dropped", st.Entries, st.Checked, st.Deleted)
	if st.Full || st.Entries != 0 || st.Deleted != 0 || st.Checked > 2 {
		t.Errorf("read of an unchanged directory: %+v, want nothing read", st)
	}

	// The changes: 12 of them on 11 objects.
	newcomer := user("Ivy") // added, and to G1
	mod := ldap.NewModifyRequest(ann, nil)
	mod.Replace("displayName", []string{"Ann Changed"})
	do("modify Ann", c.Modify(mod))
	do("rename Bob", c.ModifyDN(ldap.NewModifyDNRequest(bob, "CN=Bob Renamed", true, "")))
	do("move Cid", c.ModifyDN(ldap.NewModifyDNRequest(cid, "CN=Cid", true, moved)))
	do("delete Dot", c.Del(ldap.NewDelRequest(dot, nil)))
	dis := ldap.NewModifyRequest(eli, nil)
	dis.Replace("userAccountControl", []string{"546"}) // ACCOUNTDISABLE
	do("disable Eli", c.Modify(dis))
	do("move Hal out of the base", c.ModifyDN(ldap.NewModifyDNRequest(hal, "CN=Hal", true, outside)))
	gm := ldap.NewModifyRequest(g1, nil)
	gm.Add("member", []string{newcomer})
	gm.Delete("member", []string{fay})
	do("change G1's members", c.Modify(gm))
	nest := ldap.NewModifyRequest(g2, nil)
	nest.Add("member", []string{g3}) // G3 nested in G2 (in G1)
	do("nest G3 in G2", c.Modify(nest))
	// Fay's primary group becomes G3: she is back in G1 through G3 and G2, by primaryGroupID only.
	join := ldap.NewModifyRequest(g3, nil)
	join.Add("member", []string{fay})
	do("add Fay to G3", c.Modify(join))
	res, err := c.Search(ldap.NewSearchRequest(g3, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read G3's objectSid: %v", err)
	}
	sid := res.Entries[0].GetRawAttributeValue("objectSid")
	pg := ldap.NewModifyRequest(fay, nil)
	pg.Replace("primaryGroupID", []string{fmt.Sprint(binary.LittleEndian.Uint32(sid[len(sid)-4:]))})
	do("set Fay's primary group", c.Modify(pg))
	leave := ldap.NewModifyRequest(g2, nil)
	leave.Delete("member", []string{gus})
	do("remove Gus from G2", c.Modify(leave))

	st, err = r.SyncMirror(ctx, m, extra, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after 12 changes: %d entries read, %d changed objects checked, %d dropped", st.Entries, st.Checked, st.Deleted)
	// Changed users: Ivy, Ann, Bob, Cid, Eli, Fay (and Gus, Hal, Dot: not read, their
	// membership or place changed); groups G1, G2, G3.
	if st.Full || st.Entries > 12 || st.Deleted != 2 || st.Checked > 16 {
		t.Errorf("incremental read: %+v, want about the changed entries, Dot and Hal dropped, not a full read", st)
	}
	full, mirrored, fs, ms = snapshotsOf(t, r, m, extra)
	sameSnapshot(t, "after the changes", full, mirrored, fs, ms)
	byDN := map[string]directory.User{}
	for _, u := range mirrored {
		byDN[strings.ToLower(u.DN)] = u
	}
	for what, dn := range map[string]string{"the newcomer": newcomer, "the renamed user": "CN=Bob Renamed," + people,
		"the moved user": "CN=Cid," + moved, "the primary-group member": fay} {
		if _, ok := byDN[strings.ToLower(dn)]; !ok {
			t.Errorf("%s (%s) is not in the mirror's snapshot", what, dn)
		}
	}
	for what, dn := range map[string]string{"the deleted user": dot, "the user moved out": hal, "the moved-out user": "CN=Hal," + outside, "the leaver": gus} {
		if _, ok := byDN[strings.ToLower(dn)]; ok {
			t.Errorf("%s (%s) is still in the mirror's snapshot", what, dn)
		}
	}
	if u := byDN[strings.ToLower(eli)]; !u.Disabled {
		t.Errorf("the disabled user is %+v in the mirror's snapshot", u)
	}

	// Renaming a nested group rewrites the member values naming it: G1 is read again.
	do("rename G2", c.ModifyDN(ldap.NewModifyDNRequest(g2, "CN=G2 Renamed", true, "")))
	if st, err = r.SyncMirror(ctx, m, extra, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("after a nested group's rename: %+v", st)
	full, mirrored, fs, ms = snapshotsOf(t, r, m, extra)
	sameSnapshot(t, "after a nested group's rename", full, mirrored, fs, ms)

	// A mark of another DC, or of this one restored from a backup (another invocationId),
	// is not used: a full read.
	m.mu.Lock()
	us := m.states[directory.MirrorUsers]
	us.Cookie = []byte("usn:00000000-0000-0000-0000-000000000001:1")
	m.states[directory.MirrorUsers] = us
	m.mu.Unlock()
	if st, err = r.SyncMirror(ctx, m, extra, 0); err != nil {
		t.Fatal(err)
	}
	if !st.Full || !strings.Contains(st.Reason, "invocationId") {
		t.Errorf("read with another DC's mark: %+v, want a full read (invocationId changed)", st)
	}
	full, mirrored, fs, ms = snapshotsOf(t, r, m, extra)
	sameSnapshot(t, "after another DC's mark", full, mirrored, fs, ms)
}

// A bind account that cannot see AD's Deleted Objects container (a plain domain user: the
// container is for administrators, on Samba as on Windows) gets no read of changes, which
// would miss deletions: SyncMirror refuses with ErrNoContentSync (the sync then reads in
// full) and says why, naming the container, without the password; that full read leaves
// out a user deleted since the last one.
func TestADAccountBlindToDeletedObjectsIsReadInFull(t *testing.T) {
	dc := devstacktest.SambaDC(t)
	ctx := context.Background()
	root := dc.BaseDN()
	base := "OU=UsersyncNoDeleted," + root
	const account, pw = "usersync-nodel", "NoDel-7f3a-Pw!x"
	if out, err := dc.Tool(ctx, "user", "create", account, pw); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Samba lets any user read the container: deny this one (and, inherited, its content).
	if err := dc.DenyDeletedObjects(ctx, account); err != nil {
		t.Fatal(err)
	}
	c, err := adminConn(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	add := func(dn string, attrs map[string][]string) {
		t.Helper()
		r := addRequest(dn, attrs)
		if err := c.Add(r); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	add(base, map[string][]string{"objectClass": {"organizationalUnit"}})
	var members []string
	for _, u := range []string{"Stay", "Gone"} {
		dn := "CN=" + u + "," + base
		sam := "nodel-" + strings.ToLower(u)
		add(dn, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {sam},
			"userPrincipalName": {sam + adUPNSuffix}, "userAccountControl": {"544"}})
		members = append(members, dn)
	}
	add("CN=NoDelGroup,"+base, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"nodel-group"}, "member": members})

	cfg := directory.Config{URL: dc.LDAPSURL(), CAFile: dc.CAFile(), BindDN: "CN=" + account + ",CN=Users," + root,
		BindPassword: pw, BaseDN: base, Profile: directory.ProfileAD}
	r := mustDial(t, cfg)
	read := func() map[string]bool {
		t.Helper()
		_, err := r.SyncMirror(ctx, newMemMirror(), nil, 0)
		if !errors.Is(err, directory.ErrNoContentSync) {
			t.Fatalf("SyncMirror as an account blind to Deleted Objects: %v, want ErrNoContentSync", err)
		}
		for _, want := range []string{"Deleted Objects", account, "in full"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal %q does not say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("the refusal holds the password: %q", err)
		}
		users := map[string]bool{}
		if _, err := r.Snapshot(ctx, mustGroups(t, r), nil, 0, func(us []directory.User) error {
			for _, u := range us {
				users[u.UserName] = true
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return users
	}
	if got := read(); !got["nodel-stay"+adUPNSuffix] || !got["nodel-gone"+adUPNSuffix] {
		t.Fatalf("first read: %v", got)
	}
	if err := c.Del(ldap.NewDelRequest(members[1], nil)); err != nil {
		t.Fatal(err)
	}
	if got := read(); !got["nodel-stay"+adUPNSuffix] || got["nodel-gone"+adUPNSuffix] {
		t.Fatalf("after the delete: %v, want the deleted user left out", got)
	}
}
