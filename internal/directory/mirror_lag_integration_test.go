package directory_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/directory"
)

// addBeyondTheMark adds entries beyond the server's mark (Slapd.AddBeyondTheMark) and checks
// that the mark is behind them.
func addBeyondTheMark(t *testing.T, s *devstack.Slapd, ldif string) {
	t.Helper()
	if err := s.AddBeyondTheMark(context.Background(), ldif); err != nil {
		t.Fatal(err)
	}
	// The premise: the server's mark is behind the entries just added.
	conn, err := ldap.DialURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := conn.Search(ldap.NewSearchRequest(s.Suffix, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"contextCSN"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if mark := res.Entries[0].GetAttributeValue("contextCSN"); mark >= time.Now().UTC().Format("20060102150405.000000Z") {
		t.Fatalf("setup: the server's contextCSN %s is not behind the added entries", mark)
	}
}

// The bench's initial sync that provisioned nobody (10,000 users): right after a parallel
// load, the last entry added, Division-01 (the group of the only rule), was committed beyond
// syncprov's contextCSN, so the first read and the read from its cookie left it out; the
// renames moved the mark and the next read fetched it (101 entries: 100 users and it). Entries beyond the
// server's mark reach the mirror anyway, and a mirror entry the server no longer has is
// dropped while the mark lags (its delete may be beyond the mark, too).
func TestIncrementalReadSeesEntriesBeyondTheServersMark(t *testing.T) {
	s := ownSlapd(t)
	ctx := context.Background()
	var user string
	for _, e := range demo.Org().Entries {
		if strings.HasSuffix(e.DN, ","+demo.PeopleDN) {
			user = e.DN
			break
		}
	}
	m := newMemMirror()
	later := time.Duration(0) // how far the readers' clock is ahead
	sync := func(when string) directory.SyncStats {
		t.Helper()
		// A reader of its own: the server restarts in between.
		r, err := directory.Dial(ctx, directory.Config{URL: s.URL(), BindDN: adminDN, BindPassword: adminPW,
			BaseDN: demo.Suffix, PageSize: 50, AllowPlaintextBind: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		directory.SetClock(r, func() time.Time { return time.Now().Add(later) })
		st, err := r.SyncMirror(ctx, m, nil, 0)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		full, mirrored, fs, ms := snapshotsOf(t, r, m, nil)
		sameSnapshot(t, when, full, mirrored, fs, ms)
		t.Logf("%s: %+v", when, st)
		return st
	}

	// A new user, and a new group naming it and a user of before.
	addBeyondTheMark(t, s, `
dn: uid=beyond.mark,`+demo.PeopleDN+`
objectClass: inetOrgPerson
uid: beyond.mark
cn: Beyond Mark
sn: Mark
givenName: Beyond
mail: beyond.mark@example.com

dn: cn=Beyond-Mark,`+demo.GroupsDN+`
objectClass: groupOfNames
cn: Beyond-Mark
member: uid=beyond.mark,`+demo.PeopleDN+`
member: `+user)
	if st := sync("first read"); !st.Full {
		t.Errorf("first read: %+v, want a full read", st)
	}
	// The bench's unchanged resync at 100,000 users after a parallel load: each read from
	// the lagging mark listed every user, and the drops it might make left the changes
	// unknown, so the run took the full snapshot (11 s instead of 0.3).
	if st := sync("unchanged, the mark still behind"); st.Full || st.Entries+st.Checked+st.Deleted != 0 ||
		st.Changes == nil || len(st.Changes.Users)+len(st.Changes.Deleted)+len(st.Changes.Members) != 0 {
		t.Errorf("a read from the same mark with the same entries beyond it: %+v (changes %+v), want nothing read and no change", st, st.Changes)
	}
	addBeyondTheMark(t, s, `
dn: uid=also.beyond,`+demo.PeopleDN+`
objectClass: inetOrgPerson
uid: also.beyond
cn: Also Beyond
sn: Beyond
mail: also.beyond@example.com`)
	if st := sync("an add beyond the mark"); st.Full || st.Changes == nil || len(st.Changes.Users) == 0 {
		t.Errorf("sync with a mark: %+v (changes %+v), want an incremental read, the user added a known change", st, st.Changes)
	}

	// A user the server no longer has (deleted beyond the mark: no read from the cookie
	// names the delete) while the mark lags.
	phantomOf := func(uuid string) directory.MirrorEntry {
		phantom := directory.MirrorEntry{UUID: uuid, DN: "uid=phantom-" + uuid + "," + demo.PeopleDN,
			Attrs: map[string][][]byte{"uid": {[]byte("phantom-" + uuid)}, "mail": {[]byte("phantom-" + uuid + "@example.com")},
				"entryUUID": {[]byte(uuid)}}}
		m.mu.Lock()
		defer m.mu.Unlock()
		m.entries[directory.MirrorUsers][phantom.UUID] = phantom
		us := m.states[directory.MirrorUsers]
		us.Entries++
		m.states[directory.MirrorUsers] = us
		return phantom
	}
	phantom := phantomOf("00000000-0000-4000-8000-000000000001")
	// Another write beyond the mark (with the delete, a write that commits before an older
	// one leaves the mark where it is; a mark that moves gives another cookie).
	addBeyondTheMark(t, s, `
dn: uid=third.beyond,`+demo.PeopleDN+`
objectClass: inetOrgPerson
uid: third.beyond
cn: Third Beyond
sn: Beyond
mail: third.beyond@example.com`)
	st := sync("a delete beyond the mark")
	if st.Full || st.Changes == nil || !slices.Contains(st.Changes.Deleted, phantom.UUID) {
		t.Errorf("sync with a mark: %+v (changes %+v), want an incremental read that names %s deleted", st, st.Changes, phantom.UUID)
	}

	// A delete beyond the mark and no other write: the same cookie, the same entries beyond
	// it. Seen once the last listing is an hour old.
	phantom = phantomOf("00000000-0000-4000-8000-000000000002")
	later = time.Hour + time.Minute
	st = sync("a delete beyond the mark, an hour after the last listing")
	if st.Full || st.Changes == nil || !slices.Equal(st.Changes.Deleted, []string{phantom.UUID}) {
		t.Errorf("sync with a mark: %+v (changes %+v), want an incremental read that names only %s deleted", st, st.Changes, phantom.UUID)
	}
	if st := sync("unchanged, listed a moment ago"); st.Entries+st.Checked+st.Deleted != 0 {
		t.Errorf("a read from the same mark right after a listing: %+v, want nothing read", st)
	}
}
