package directory_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
)

// memMirror is an in-memory directory.MirrorStore (the store's is tested in e2e): a read
// works on a copy, which Commit puts in place.
type memMirror struct {
	mu      sync.Mutex
	entries map[string]map[string]directory.MirrorEntry // kind -> uuid -> entry
	states  map[string]directory.SyncState
	commits int
}

func newMemMirror() *memMirror {
	return &memMirror{entries: map[string]map[string]directory.MirrorEntry{}, states: map[string]directory.SyncState{}}
}

func (m *memMirror) Begin(context.Context) (directory.MirrorTx, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &memTx{m: m, entries: map[string]map[string]directory.MirrorEntry{}, states: maps.Clone(m.states)}
	for k, es := range m.entries {
		t.entries[k] = maps.Clone(es)
	}
	return t, nil
}

func (m *memMirror) View(context.Context) (directory.MirrorView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := memView{}
	for k, es := range m.entries {
		v[k] = slices.Collect(maps.Values(es))
	}
	return v, nil
}

// held is how many entries of kind the mirror holds, and its state.
func (m *memMirror) held(kind string) (int, directory.SyncState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.states[kind]
	return len(m.entries[kind]), st, ok
}

type memView map[string][]directory.MirrorEntry

func (v memView) Close(context.Context) {}

func (v memView) Some(ctx context.Context, kind string, ids []string, page func([]directory.MirrorEntry) error) error {
	var es []directory.MirrorEntry
	for _, e := range v[kind] {
		if slices.Contains(ids, e.UUID) {
			es = append(es, e)
		}
	}
	return memView{kind: es}.Entries(ctx, kind, page)
}

func (v memView) Names(ctx context.Context, kind string, page func([]directory.MirrorEntry) error) error {
	return v.Entries(ctx, kind, page)
}

func (v memView) Count(_ context.Context, kind string) (int, error) { return len(v[kind]), nil }

func (v memView) Entries(_ context.Context, kind string, page func([]directory.MirrorEntry) error) error {
	es := v[kind]
	for len(es) > 0 {
		n := min(len(es), 37)
		if err := page(es[:n]); err != nil {
			return err
		}
		es = es[n:]
	}
	return nil
}

type memTx struct {
	m       *memMirror
	entries map[string]map[string]directory.MirrorEntry
	states  map[string]directory.SyncState
}

func (t *memTx) kind(k string) map[string]directory.MirrorEntry {
	if t.entries[k] == nil {
		t.entries[k] = map[string]directory.MirrorEntry{}
	}
	return t.entries[k]
}

func (t *memTx) State(_ context.Context, kind string) (directory.SyncState, int, bool, error) {
	st, ok := t.states[kind]
	return st, len(t.entries[kind]), ok, nil
}

func (t *memTx) Clear(_ context.Context, kind string) error {
	delete(t.entries, kind)
	return nil
}

func (t *memTx) Put(_ context.Context, kind string, es []directory.MirrorEntry) error {
	for _, e := range es {
		t.kind(kind)[e.UUID] = e
	}
	return nil
}

func (t *memTx) Delete(_ context.Context, kind string, ids []string) (int, error) {
	n := 0
	for _, id := range ids {
		if _, ok := t.kind(kind)[id]; ok {
			delete(t.kind(kind), id)
			n++
		}
	}
	return n, nil
}

func (t *memTx) Keep(_ context.Context, kind string, ids []string) ([]directory.MirrorEntry, error) {
	var gone []directory.MirrorEntry
	for id, e := range t.kind(kind) {
		if !slices.Contains(ids, id) {
			gone = append(gone, e)
			delete(t.kind(kind), id)
		}
	}
	return gone, nil
}

func (t *memTx) DNs(_ context.Context, kind string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if e, ok := t.kind(kind)[id]; ok {
			out[id] = e.DN
		}
	}
	return out, nil
}

func (t *memTx) Entries(_ context.Context, kind string, ids []string) ([]directory.MirrorEntry, error) {
	var out []directory.MirrorEntry
	for _, id := range ids {
		if e, ok := t.kind(kind)[id]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

func (t *memTx) SetState(_ context.Context, kind string, st directory.SyncState) error {
	st.Entries = len(t.entries[kind])
	t.states[kind] = st
	return nil
}

func (t *memTx) Commit(context.Context) error {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	t.m.entries, t.m.states = t.entries, t.states
	t.m.commits++
	return nil
}

func (t *memTx) Rollback(context.Context) {}

// ownSlapd starts a slapd of its own with the demo organization (the test changes it).
func ownSlapd(t *testing.T, mutate ...func(*devstack.Slapd)) *devstack.Slapd {
	t.Helper()
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
	dir := t.TempDir()
	s := &devstack.Slapd{Dir: dir, Suffix: demo.Suffix, AdminDN: adminDN, AdminPassword: adminPW, SizeLimit: sizeLimit}
	for _, m := range mutate {
		m(s)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if err := devstack.LoadEntries(ctx, s.URL(), adminDN, adminPW, demo.Org().Entries); err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshotsOf reads the snapshot of every group twice: by a full read of the directory
// and from the mirror.
func snapshotsOf(t *testing.T, r *directory.Reader, m directory.MirrorStore, extra []string) (full, fromMirror map[string]directory.User, fs, ms directory.Stats) {
	t.Helper()
	ctx := context.Background()
	groups := mustGroups(t, r)
	collect := func(into map[string]directory.User) func([]directory.User) error {
		return func(us []directory.User) error {
			for _, u := range us {
				into[u.ExternalID] = u
			}
			return nil
		}
	}
	full, fromMirror = map[string]directory.User{}, map[string]directory.User{}
	fs, err := r.Snapshot(ctx, groups, extra, 0, collect(full))
	if err != nil {
		t.Fatal(err)
	}
	ms, err = r.SnapshotFromMirror(ctx, m, nil, groups, extra, 0, collect(fromMirror))
	if err != nil {
		t.Fatal(err)
	}
	return full, fromMirror, fs, ms
}

func sameSnapshot(t *testing.T, when string, full, fromMirror map[string]directory.User, fs, ms directory.Stats) {
	t.Helper()
	if len(full) == 0 {
		t.Fatalf("%s: the full read found no users", when)
	}
	for id, u := range full {
		if !reflect.DeepEqual(fromMirror[id], u) {
			t.Errorf("%s: user %s: full read %+v, mirror %+v", when, id, u, fromMirror[id])
		}
	}
	for id, u := range fromMirror {
		if _, ok := full[id]; !ok {
			t.Errorf("%s: user %s (%s) only in the mirror", when, id, u.DN)
		}
	}
	if !reflect.DeepEqual(fs, ms) {
		t.Errorf("%s: stats: full read %+v, mirror %+v", when, fs, ms)
	}
}

// After adds, attribute and membership changes, a rename and a delete, the snapshot taken
// from the incrementally kept mirror is the full read's, and the incremental read fetched
// only the changed entries.
func TestIncrementalReadAgreesWithAFullRead(t *testing.T) {
	s := ownSlapd(t)
	ctx := context.Background()
	r, err := directory.Dial(ctx, directory.Config{URL: s.URL(), BindDN: adminDN, BindPassword: adminPW,
		BaseDN: demo.Suffix, PageSize: 50, AllowPlaintextBind: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	extra := []string{"employeeNumber", "l"}
	m := newMemMirror()

	st, err := r.SyncMirror(ctx, m, extra, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Reason != "first read" {
		t.Errorf("first sync: %+v, want a full read (first read)", st)
	}
	full, mirrored, fs, ms := snapshotsOf(t, r, m, extra)
	sameSnapshot(t, "after the first read", full, mirrored, fs, ms)
	if st.Entries != fs.Users+fs.Groups {
		t.Errorf("first sync fetched %d entries, want every user and group (%d)", st.Entries, fs.Users+fs.Groups)
	}

	st, err = r.SyncMirror(ctx, m, extra, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Full || st.Entries != 0 || st.Deleted != 0 {
		t.Errorf("sync of an unchanged directory: %+v, want nothing read", st)
	}

	before := mirrored // the snapshot before the changes

	// The changes, on the admin's own connection.
	conn, err := ldap.DialURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(adminDN, adminPW); err != nil {
		t.Fatal(err)
	}
	var group *ldap.AddRequest
	var members []string
	for _, e := range demo.Org().Entries {
		if strings.HasSuffix(e.DN, ","+demo.GroupsDN) {
			var us []string
			for _, a := range e.Attributes {
				if a.Type == "member" {
					for _, v := range a.Vals {
						if strings.HasPrefix(v, "uid=") && !strings.Contains(v, "disabled") {
							us = append(us, v)
						}
					}
				}
			}
			if len(us) >= 4 {
				group, members = e, us
				break
			}
		}
	}
	if group == nil {
		t.Fatal("no demo group with 4 user members")
	}
	modified, renamed, deleted, removed := members[0], members[1], members[2], members[3]
	do := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	added := "uid=incremental.newcomer," + demo.PeopleDN
	add := ldap.NewAddRequest(added, nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	add.Attribute("uid", []string{"incremental.newcomer"})
	add.Attribute("cn", []string{"New Comer"})
	add.Attribute("sn", []string{"Comer"})
	add.Attribute("givenName", []string{"New"})
	add.Attribute("mail", []string{"newcomer@example.com"})
	add.Attribute("employeeNumber", []string{"E99999"})
	do("add user", conn.Add(add))
	mod := ldap.NewModifyRequest(modified, nil)
	mod.Replace("displayName", []string{"Renamed In Place"})
	mod.Replace("l", []string{"Reykjavik"})
	do("modify user", conn.Modify(mod))
	rdn := "uid=incremental.renamed"
	do("rename user", conn.ModifyDN(ldap.NewModifyDNRequest(renamed, rdn, true, "")))
	do("delete user", conn.Del(ldap.NewDelRequest(deleted, nil)))
	gm := ldap.NewModifyRequest(group.DN, nil)
	gm.Add("member", []string{added})
	gm.Delete("member", []string{removed})
	// No referential integrity overlay: the group keeps naming the renamed and deleted
	// users by their old DNs, as a directory may. Point it at the new DN, as refint would.
	gm.Delete("member", []string{renamed})
	gm.Add("member", []string{rdn + "," + demo.PeopleDN})
	do("change group members", conn.Modify(gm))

	st, err = r.SyncMirror(ctx, m, extra, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Added, modified and renamed user; the group.
	if st.Full || st.Entries != 4 || st.Deleted != 1 {
		t.Errorf("incremental sync: %+v, want 4 entries fetched and 1 deleted, not a full read", st)
	}
	full, mirrored, fs, ms = snapshotsOf(t, r, m, extra)
	sameSnapshot(t, "after the changes", full, mirrored, fs, ms)

	// The delta snapshot of the read's changes: it touched the added, modified, renamed,
	// deleted and removed users, and holds exactly the mirror snapshot's users among them.
	if st.Changes == nil {
		t.Fatalf("the read's changes are not known: %+v", st)
	}
	idOf := func(users map[string]directory.User, dn string) string {
		for id, u := range users {
			if strings.EqualFold(u.DN, dn) {
				return id
			}
		}
		t.Fatalf("no user %s", dn)
		return ""
	}
	delta := map[string]directory.User{}
	_, touched, err := r.SnapshotChanges(ctx, m, mustGroups(t, r), extra, 0, st.Changes, func(us []directory.User) error {
		for _, u := range us {
			delta[u.ExternalID] = u
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{idOf(mirrored, added), idOf(mirrored, modified), idOf(mirrored, rdn+","+demo.PeopleDN),
		idOf(before, deleted), idOf(before, removed)} {
		if !slices.Contains(touched, id) {
			t.Errorf("the delta snapshot did not touch %s (touched %v)", id, touched)
		}
	}
	for _, id := range touched {
		if !reflect.DeepEqual(delta[id], mirrored[id]) {
			t.Errorf("touched user %s: delta snapshot %+v, mirror's snapshot %+v", id, delta[id], mirrored[id])
		}
	}
	if len(delta) > len(touched) || len(touched) >= len(full) {
		t.Errorf("the delta snapshot holds %d users, touched %d, of %d", len(delta), len(touched), len(full))
	}
	byDN := map[string]directory.User{}
	for _, u := range mirrored {
		byDN[strings.ToLower(u.DN)] = u
	}
	if _, ok := byDN[strings.ToLower(added)]; !ok {
		t.Errorf("the added user %s is not in the mirror's snapshot", added)
	}
	if _, ok := byDN[strings.ToLower(deleted)]; ok {
		t.Errorf("the deleted user %s is still in the mirror's snapshot", deleted)
	}
	if u := byDN[strings.ToLower(modified)]; u.DisplayName != "Renamed In Place" || u.Attributes["l"] != "Reykjavik" {
		t.Errorf("the modified user is %+v in the mirror's snapshot", u)
	}
	if _, ok := byDN[strings.ToLower(rdn+","+demo.PeopleDN)]; !ok {
		t.Errorf("the renamed user is not in the mirror's snapshot at its new DN")
	}

	// Another scope (a new mapped attribute) reads everything again; so does the schedule.
	st, err = r.SyncMirror(ctx, m, append(extra, "departmentNumber"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Reason != "scope changed" {
		t.Errorf("sync with another attribute: %+v, want a full read (scope changed)", st)
	}
	full, mirrored, fs, ms = snapshotsOf(t, r, m, append(extra, "departmentNumber"))
	sameSnapshot(t, "after another scope", full, mirrored, fs, ms)
	if st, err = r.SyncMirror(ctx, m, append(extra, "departmentNumber"), time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Reason != "scheduled" {
		t.Errorf("sync past the full-read interval: %+v, want a full read (scheduled)", st)
	}

	// A cookie the server cannot use (another server's, an expired one) reads everything.
	m.mu.Lock()
	us := m.states[directory.MirrorUsers]
	us.Cookie = []byte("rid=000,csn=20000101000000.000000Z#000000#000#000000")
	m.states[directory.MirrorUsers] = us
	m.mu.Unlock()
	if st, err = r.SyncMirror(ctx, m, append(extra, "departmentNumber"), 0); err != nil {
		t.Fatal(err)
	}
	full, mirrored, fs, ms = snapshotsOf(t, r, m, append(extra, "departmentNumber"))
	sameSnapshot(t, "after a stale cookie", full, mirrored, fs, ms)
}

// A directory without content synchronization says so (ErrNoContentSync: the run then reads
// it in full) and leaves the mirror as it was.
func TestIncrementalReadWithoutSyncprovAsksForAFullRead(t *testing.T) {
	s := ownSlapd(t, func(s *devstack.Slapd) { s.NoContentSync = true })
	ctx := context.Background()
	r, err := directory.Dial(ctx, directory.Config{URL: s.URL(), BindDN: adminDN, BindPassword: adminPW,
		BaseDN: demo.Suffix, AllowPlaintextBind: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := newMemMirror()
	if _, err := r.SyncMirror(ctx, m, nil, 0); !errors.Is(err, directory.ErrNoContentSync) {
		t.Fatalf("SyncMirror without syncprov: %v, want ErrNoContentSync", err)
	}
	if _, _, ok := m.held(directory.MirrorUsers); ok {
		t.Error("the mirror has a sync state after a failed read")
	}
}
