package directory

import (
	"context"
	"slices"
	"testing"
)

// mapTx is a MirrorTx over entries in memory (kind -> UUID -> entry); it records nothing.
type mapTx map[string]map[string]MirrorEntry

func (t mapTx) State(context.Context, string) (SyncState, int, bool, error) { panic("not read here") }
func (t mapTx) Clear(_ context.Context, kind string) error                  { delete(t, kind); return nil }
func (t mapTx) SetState(context.Context, string, SyncState) error           { panic("not read here") }
func (t mapTx) Commit(context.Context) error                                { return nil }
func (t mapTx) Rollback(context.Context)                                    {}

func (t mapTx) Put(_ context.Context, kind string, es []MirrorEntry) error {
	for _, e := range es {
		t[kind][e.UUID] = e
	}
	return nil
}

func (t mapTx) Keep(_ context.Context, kind string, ids []string) ([]MirrorEntry, error) {
	var gone []MirrorEntry
	for id, e := range t[kind] {
		if !slices.Contains(ids, id) {
			gone = append(gone, e)
			delete(t[kind], id)
		}
	}
	return gone, nil
}

func (t mapTx) Delete(_ context.Context, kind string, ids []string) (int, error) {
	n := 0
	for _, id := range ids {
		if _, ok := t[kind][id]; ok {
			delete(t[kind], id)
			n++
		}
	}
	return n, nil
}

func (t mapTx) DNs(_ context.Context, kind string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if e, ok := t[kind][id]; ok {
			out[id] = e.DN
		}
	}
	return out, nil
}

func (t mapTx) Entries(_ context.Context, kind string, ids []string) ([]MirrorEntry, error) {
	var out []MirrorEntry
	for _, id := range ids {
		if e, ok := t[kind][id]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// An AD read's changes stay known when users change and groups change their members (the
// read names every changed object as possibly gone from the groups: only held groups
// count), or are created or deleted since the read's mark, and are unknown when a group
// moves in or out, or changes its DN or SID: the users whose primary group it is
// (primaryGroupID) are in no member value.
func TestRecordingADGroups(t *testing.T) {
	const (
		ann, bob = "cn=ann,ou=people,dc=corp", "cn=bob,ou=people,dc=corp"
		staffDN  = "CN=Staff,OU=Groups,DC=corp"
	)
	sid, otherSID := []byte("sid-of-staff"), []byte("sid-elsewhere")
	group := func(dn string, sid []byte, members ...string) MirrorEntry {
		e := MirrorEntry{UUID: "g-staff", DN: dn, Attrs: map[string][][]byte{"objectSid": {sid}}}
		for _, m := range members {
			e.Attrs["member"] = append(e.Attrs["member"], []byte(m))
		}
		return e
	}
	user := func(id, dn string) MirrorEntry { return MirrorEntry{UUID: id, DN: dn} }
	newGroup := group("CN=New,OU=Groups,DC=corp", nil, ann)
	newGroup.UUID = "g-new"
	tests := []struct {
		name    string
		changed map[string]objectChange // what AD says of the objects changed since the mark
		read    func(ctx context.Context, tx MirrorTx) error
		members []string // the members recorded; nil with unknown
		unknown bool
	}{
		{name: "users changed, the read naming them as possibly gone groups", read: func(ctx context.Context, tx MirrorTx) error {
			if err := tx.Put(ctx, MirrorUsers, []MirrorEntry{user("u-ann", ann)}); err != nil {
				return err
			}
			_, err := tx.Delete(ctx, MirrorGroups, []string{"u-ann", "u-bob", "some-other-object"})
			return err
		}},
		{name: "a member added and one removed", members: []string{bob, ann}, read: func(ctx context.Context, tx MirrorTx) error {
			return tx.Put(ctx, MirrorGroups, []MirrorEntry{group(staffDN, sid, bob)})
		}},
		{name: "a group deleted", members: []string{ann}, changed: map[string]objectChange{"g-staff": {deleted: true}},
			read: func(ctx context.Context, tx MirrorTx) error {
				_, err := tx.Delete(ctx, MirrorGroups, []string{"u-bob", "g-staff"})
				return err
			}},
		{name: "a group moved out", unknown: true, changed: map[string]objectChange{"g-staff": {}},
			read: func(ctx context.Context, tx MirrorTx) error {
				_, err := tx.Delete(ctx, MirrorGroups, []string{"u-bob", "g-staff"})
				return err
			}},
		{name: "a group renamed", unknown: true, read: func(ctx context.Context, tx MirrorTx) error {
			return tx.Put(ctx, MirrorGroups, []MirrorEntry{group("CN=Staff Renamed,OU=Groups,DC=corp", sid, ann)})
		}},
		{name: "a group with another SID", unknown: true, read: func(ctx context.Context, tx MirrorTx) error {
			return tx.Put(ctx, MirrorGroups, []MirrorEntry{group(staffDN, otherSID, ann)})
		}},
		{name: "a group created since the mark", members: []string{ann}, changed: map[string]objectChange{"g-new": {created: true}},
			read: func(ctx context.Context, tx MirrorTx) error {
				return tx.Put(ctx, MirrorGroups, []MirrorEntry{newGroup})
			}},
		{name: "a group moved in", unknown: true, changed: map[string]objectChange{"g-new": {}},
			read: func(ctx context.Context, tx MirrorTx) error {
				return tx.Put(ctx, MirrorGroups, []MirrorEntry{newGroup})
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tx := &recordingTx{ad: true, MirrorTx: mapTx{
				MirrorUsers:  {"u-ann": user("u-ann", ann), "u-bob": user("u-bob", bob)},
				MirrorGroups: {"g-staff": group(staffDN, sid, ann)},
			}}
			tx.objectsChanged(tc.changed)
			if err := tc.read(ctx, tx); err != nil {
				t.Fatal(err)
			}
			ch := tx.changes()
			if tc.unknown {
				if ch != nil {
					t.Fatalf("changes %+v, want unknown", ch)
				}
				return
			}
			if ch == nil {
				t.Fatal("changes unknown")
			}
			if !slices.Equal(ch.Members, tc.members) || !ch.PrimaryGroups {
				t.Errorf("changes %+v, want members %v and PrimaryGroups", ch, tc.members)
			}
		})
	}
}

// On AD a group gained or lost as a member (nesting changed) changes the groups of the users
// whose primary group it is, which no DN names: Touched gives up. A user gained or lost is
// touched as elsewhere.
func TestTouchedADNestingChanged(t *testing.T) {
	const team, staff, ann = "cn=team,dc=corp", "cn=staff,dc=corp", "cn=ann,dc=corp"
	graph := []GroupMembers{{DN: team, Members: []string{staff}}, {DN: staff, Members: []string{ann}}}
	groups := func(page func([]GroupMembers) error) error { return page(graph) }
	users := func(page func([]MirrorEntry) error) error { return page([]MirrorEntry{{UUID: "u-ann", DN: ann}}) }
	for _, tc := range []struct {
		ch     Changes
		want   []string
		wantOK bool
	}{
		{Changes{Members: []string{ann}, PrimaryGroups: true}, []string{"u-ann"}, true},
		{Changes{Members: []string{staff}}, []string{"u-ann"}, true}, // OpenLDAP: the nesting names every member
		{Changes{Members: []string{staff}, PrimaryGroups: true}, nil, false},
	} {
		got, ok, err := Touched(context.Background(), &tc.ch, groups, users, 10)
		if err != nil || ok != tc.wantOK || !slices.Equal(got, tc.want) {
			t.Errorf("Touched(%+v) = %v, %v, %v; want %v, %v", tc.ch, got, ok, err, tc.want, tc.wantOK)
		}
	}
}

// Entries a present phase (or the check of a lagging mark) drops are known changes: the
// users deleted, the members of the groups gone; on AD a group gone leaves them unknown.
func TestRecordingEntriesKeepDrops(t *testing.T) {
	const ann, bob = "cn=ann,ou=people,dc=corp", "cn=bob,ou=people,dc=corp"
	for _, ad := range []bool{false, true} {
		tx := &recordingTx{ad: ad, MirrorTx: mapTx{
			MirrorUsers: {"u-ann": {UUID: "u-ann", DN: ann}, "u-bob": {UUID: "u-bob", DN: bob}},
			MirrorGroups: {"g-staff": {UUID: "g-staff", DN: "cn=staff,dc=corp",
				Attrs: map[string][][]byte{"member": {[]byte(bob)}}}},
		}}
		ctx := context.Background()
		if _, err := tx.Keep(ctx, MirrorUsers, []string{"u-ann"}); err != nil {
			t.Fatal(err)
		}
		if ch := tx.changes(); ch == nil || !slices.Equal(ch.Deleted, []string{"u-bob"}) {
			t.Fatalf("ad %v: a user dropped: changes %+v, want u-bob deleted", ad, ch)
		}
		if _, err := tx.Keep(ctx, MirrorGroups, nil); err != nil {
			t.Fatal(err)
		}
		switch ch := tx.changes(); {
		case ad && ch != nil:
			t.Errorf("AD: a group dropped: changes %+v, want unknown", ch)
		case !ad && (ch == nil || !slices.Equal(ch.Members, []string{bob})):
			t.Errorf("a group dropped: changes %+v, want its member %s", ch, bob)
		}
	}
}
