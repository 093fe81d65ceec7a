package directory_test

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
)

const (
	adminDN    = "cn=admin,dc=example,dc=com"
	adminPW    = "admin-secret-pw"
	readerDN   = "cn=usersync-reader,dc=example,dc=com"
	readerPW   = "reader-secret-pw"
	sizeLimit  = 100 // below the 300 demo users: only paged reads see them all
	demoPeople = 300
)

// One slapd with the demo organization serves every test of the package.
var shared struct {
	once sync.Once
	s    *devstack.Slapd
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.s != nil {
		_ = shared.s.Stop()
		_ = os.RemoveAll(shared.s.Dir)
	}
	if tlsShared.s != nil {
		_ = tlsShared.s.Stop()
	}
	if tlsShared.dir != "" {
		_ = os.RemoveAll(tlsShared.dir)
	}
	devstacktest.StopSambaDC()
	os.Exit(code)
}

func demoLDAP(t *testing.T) *devstack.Slapd {
	t.Helper()
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "usersync-directory-test-")
		if err != nil {
			shared.err = err
			return
		}
		s := &devstack.Slapd{Dir: dir, Suffix: demo.Suffix, AdminDN: adminDN, AdminPassword: adminPW, SizeLimit: sizeLimit}
		shared.s = s
		ctx := context.Background()
		if shared.err = s.Start(ctx); shared.err != nil {
			return
		}
		reader := ldap.NewAddRequest(readerDN, nil)
		reader.Attribute("objectClass", []string{"applicationProcess", "simpleSecurityObject"})
		reader.Attribute("cn", []string{"usersync-reader"})
		reader.Attribute("userPassword", []string{readerPW})
		shared.err = devstack.LoadEntries(ctx, s.URL(), adminDN, adminPW, append(demo.Org().Entries, reader))
	})
	if shared.err != nil {
		t.Fatalf("demo slapd: %v", shared.err)
	}
	return shared.s
}

// dial connects as the read-only service account, which has a size limit of 100.
func dial(t *testing.T, mutate ...func(*directory.Config)) *directory.Reader {
	t.Helper()
	s := demoLDAP(t)
	// A local test slapd without TLS: the password may go in clear (tls_integration_test.go
	// checks TLS and the refusal).
	cfg := directory.Config{URL: s.URL(), BindDN: readerDN, BindPassword: readerPW, BaseDN: demo.Suffix, PageSize: 50,
		AllowPlaintextBind: true}
	for _, m := range mutate {
		m(&cfg)
	}
	r, err := directory.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// snapshot collects every emitted user by DN, and the batch sizes.
func snapshot(t *testing.T, r *directory.Reader, groups []string, extra []string, batch int) (map[string]directory.User, directory.Stats, []int) {
	t.Helper()
	users := map[string]directory.User{}
	var sizes []int
	stats, err := r.Snapshot(context.Background(), groups, extra, batch, func(us []directory.User) error {
		sizes = append(sizes, len(us))
		for _, u := range us {
			if _, dup := users[u.DN]; dup {
				t.Errorf("user %s emitted twice", u.DN)
			}
			users[u.DN] = u
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Snapshot(%v): %v", groups, err)
	}
	return users, stats, sizes
}

// demoUsers are the demo's user entries by DN: the independent oracle of the tests.
func demoUsers() map[string]*ldap.AddRequest {
	out := map[string]*ldap.AddRequest{}
	for _, e := range demo.Org().Entries {
		if strings.HasPrefix(e.DN, "uid=") {
			out[e.DN] = e
		}
	}
	return out
}

func attr(e *ldap.AddRequest, name string) string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Type, name) && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return ""
}

// usersWhere lists the demo users whose attribute name has one of values.
func usersWhere(name string, values ...string) map[string]bool {
	out := map[string]bool{}
	for dn, e := range demoUsers() {
		for _, v := range values {
			if attr(e, name) == v {
				out[dn] = true
			}
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameDNs[V any](t *testing.T, what string, got map[string]V, want map[string]bool) {
	t.Helper()
	for dn := range want {
		if _, ok := got[dn]; !ok {
			t.Errorf("%s: missing %s", what, dn)
		}
	}
	for dn := range got {
		if !want[dn] {
			t.Errorf("%s: unexpected %s", what, dn)
		}
	}
}

func TestSnapshotFollowsNestedGroups(t *testing.T) {
	r := dial(t)
	eng := demo.GroupDN("Engineering")
	users, stats, _ := snapshot(t, r, []string{eng}, nil, 0)
	// Engineering > Backend, Frontend, Platform > SRE: SRE members are 3 levels down.
	sameDNs(t, "Engineering", users, usersWhere("ou", "Backend", "Frontend", "Platform", "SRE"))
	if n := len(usersWhere("ou", "SRE")); n == 0 {
		t.Fatal("demo has no SRE users")
	}
	for dn, u := range users {
		if len(u.Groups) != 1 || u.Groups[0] != eng {
			t.Errorf("%s: Groups = %v, want [%s]", dn, u.Groups, eng)
		}
	}
	if stats.Groups != len(mustGroups(t, r)) || stats.Users != demoPeople {
		t.Errorf("stats = %+v, want Groups %d and Users %d", stats, len(mustGroups(t, r)), demoPeople)
	}

	// All-Staff > Engineering > Platform > SRE: depth 4, and a user in two requested groups.
	all := demo.GroupDN("All-Staff")
	users, _, _ = snapshot(t, r, []string{eng, all}, nil, 0)
	if len(users) != demoPeople {
		t.Errorf("All-Staff + Engineering: %d users, want %d", len(users), demoPeople)
	}
	for dn := range usersWhere("ou", "SRE") {
		if got := users[dn].Groups; len(got) != 2 || got[0] != all || got[1] != eng {
			t.Errorf("SRE user %s: Groups = %v, want [%s %s]", dn, got, all, eng)
		}
	}
	for dn := range usersWhere("ou", "Finance") {
		if got := users[dn].Groups; len(got) != 1 || got[0] != all {
			t.Errorf("Finance user %s: Groups = %v, want [%s]", dn, got, all)
		}
	}
}

func mustGroups(t *testing.T, r *directory.Reader) []string {
	t.Helper()
	gs, err := r.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

func TestSnapshotTerminatesOnGroupCycle(t *testing.T) {
	r := dial(t)
	alpha, beta := demo.GroupDN("Project-Alpha"), demo.GroupDN("Project-Beta")
	a, _, _ := snapshot(t, r, []string{alpha}, nil, 0)
	b, _, _ := snapshot(t, r, []string{beta}, nil, 0)
	// Each project holds its direct members plus, through the cycle, the other's.
	want := map[string]bool{}
	for _, e := range demo.Org().Entries {
		if e.DN == "cn=Project-Alpha,ou=Groups,dc=example,dc=com" || e.DN == "cn=Project-Beta,ou=Groups,dc=example,dc=com" {
			for _, a := range e.Attributes {
				if a.Type == "member" {
					for _, m := range a.Vals {
						if strings.HasPrefix(m, "uid=") {
							want[m] = true
						}
					}
				}
			}
		}
	}
	if len(want) < 10 {
		t.Fatalf("demo projects have %d direct user members, want >= 10", len(want))
	}
	sameDNs(t, "Project-Alpha", a, want)
	sameDNs(t, "Project-Beta", b, want)
	both, _, _ := snapshot(t, r, []string{beta, alpha}, nil, 0)
	for dn, u := range both {
		if len(u.Groups) != 2 || u.Groups[0] != alpha || u.Groups[1] != beta {
			t.Errorf("%s: Groups = %v, want [%s %s]", dn, u.Groups, alpha, beta)
		}
	}
}

func TestSnapshotFlagsDisabledUsers(t *testing.T) {
	r := dial(t)
	users, stats, _ := snapshot(t, r, []string{demo.GroupDN("All-Staff")}, nil, 0)
	disabled := usersWhere("employeeType", "disabled")
	if len(disabled) == 0 {
		t.Fatal("demo has no disabled users")
	}
	for dn, u := range users {
		if u.Disabled != disabled[dn] {
			t.Errorf("%s: Disabled = %v, want %v", dn, u.Disabled, disabled[dn])
		}
	}
	if stats.Disabled != len(disabled) || stats.InScope != demoPeople-len(disabled) {
		t.Errorf("stats = %+v, want Disabled %d, InScope %d", stats, len(disabled), demoPeople-len(disabled))
	}
}

func TestSnapshotPagesPastTheServerSizeLimit(t *testing.T) {
	r := dial(t) // PageSize 50, as an account limited to 100 entries per unpaged search
	s := demoLDAP(t)
	c, err := ldap.DialURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(readerDN, readerPW); err != nil {
		t.Fatal(err)
	}
	_, err = c.Search(ldap.NewSearchRequest(demo.PeopleDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"1.1"}, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Fatalf("unpaged search of %d users with limit %d: err = %v, want size limit exceeded", demoPeople, sizeLimit, err)
	}

	users, stats, sizes := snapshot(t, r, []string{demo.GroupDN("All-Staff")}, nil, 64)
	if len(users) != demoPeople || stats.Users != demoPeople {
		t.Errorf("got %d users (stats %+v), want %d", len(users), stats, demoPeople)
	}
	for i, n := range sizes {
		if i < len(sizes)-1 && n != 64 {
			t.Errorf("batch %d has %d users, want 64", i, n)
		}
	}
	if want := (demoPeople + 63) / 64; len(sizes) != want {
		t.Errorf("%d batches, want %d", len(sizes), want)
	}
}

func TestSnapshotCopiesIdentityAndExtraAttributes(t *testing.T) {
	r := dial(t)
	extra := []string{"employeeNumber", "departmentNumber", "l", "title"} // title is never set
	users, _, _ := snapshot(t, r, []string{demo.GroupDN("All-Staff")}, extra, 0)
	for dn, e := range demoUsers() {
		u, ok := users[dn]
		if !ok {
			t.Errorf("%s not emitted", dn)
			continue
		}
		want := directory.User{DN: dn, UserName: attr(e, "mail"), Email: attr(e, "mail"), GivenName: attr(e, "givenName"),
			FamilyName: attr(e, "sn"), DisplayName: attr(e, "displayName")}
		got := u
		got.ExternalID, got.Attributes, got.Groups, got.Disabled = "", nil, nil, false
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", dn, got, want)
		}
		for _, a := range extra {
			v, has := u.Attributes[a]
			if w := attr(e, a); v != w || has != (w != "") {
				t.Errorf("%s: Attributes[%s] = %q (present %v), want %q", dn, a, v, has, w)
			}
		}
	}
}

func TestSnapshotExternalIDIsAStableUUID(t *testing.T) {
	r := dial(t)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	first, _, _ := snapshot(t, r, []string{demo.GroupDN("All-Staff")}, nil, 0)
	second, _, _ := snapshot(t, dial(t), []string{demo.GroupDN("All-Staff")}, nil, 0)
	seen := map[string]string{}
	for dn, u := range first {
		if !uuid.MatchString(u.ExternalID) {
			t.Errorf("%s: ExternalID %q is not a UUID", dn, u.ExternalID)
		}
		if other, dup := seen[u.ExternalID]; dup {
			t.Errorf("%s and %s share ExternalID %s", dn, other, u.ExternalID)
		}
		seen[u.ExternalID] = dn
		if second[dn].ExternalID != u.ExternalID {
			t.Errorf("%s: ExternalID changed between reads: %s, %s", dn, u.ExternalID, second[dn].ExternalID)
		}
	}
}

func TestSnapshotReportsMissingAndEmptyGroups(t *testing.T) {
	r := dial(t)
	missing := "cn=Gone,ou=Groups,dc=example,dc=com"
	users, stats, _ := snapshot(t, r, []string{missing, demo.GroupDN("IT")}, nil, 0)
	if want := []string{"cn=gone,ou=groups,dc=example,dc=com"}; len(stats.MissingGroups) != 1 || stats.MissingGroups[0] != want[0] {
		t.Errorf("MissingGroups = %v, want %v", stats.MissingGroups, want)
	}
	sameDNs(t, "IT with a missing group", users, usersWhere("ou", "IT"))

	calls := 0
	stats, err := r.Snapshot(context.Background(), []string{demo.GroupDN("Interns")}, nil, 10, func([]directory.User) error {
		calls++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 0 || stats.InScope != 0 || stats.Disabled != 0 || len(stats.MissingGroups) != 0 {
		t.Errorf("empty group: %d emits, stats %+v; want none", calls, stats)
	}
}

func TestSnapshotNormalizesRequestedGroups(t *testing.T) {
	r := dial(t)
	users, _, _ := snapshot(t, r, []string{" CN=IT , OU=Groups,DC=Example,DC=com", "cn=it,ou=groups,dc=example,dc=com"}, nil, 0)
	if len(users) == 0 {
		t.Fatal("no IT users")
	}
	for dn, u := range users {
		if len(u.Groups) != 1 || u.Groups[0] != "cn=it,ou=groups,dc=example,dc=com" {
			t.Errorf("%s: Groups = %v, want the normalized DN once", dn, u.Groups)
		}
	}
}

func TestSnapshotFailsOnDirectoryErrors(t *testing.T) {
	r := dial(t, func(c *directory.Config) { c.BaseDN = "ou=Nowhere,dc=example,dc=com" })
	emitted := false
	_, err := r.Snapshot(context.Background(), []string{demo.GroupDN("IT")}, nil, 0, func([]directory.User) error {
		emitted = true
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "ou=Nowhere") {
		t.Errorf("snapshot under a missing base: err = %v, want one naming the base", err)
	}
	if emitted {
		t.Error("users emitted although the read failed")
	}

	r = dial(t)
	boom := "target store full"
	_, err = r.Snapshot(context.Background(), []string{demo.GroupDN("All-Staff")}, nil, 10, func([]directory.User) error {
		return errorString(boom)
	})
	if err == nil || !strings.Contains(err.Error(), boom) {
		t.Errorf("emit error: err = %v, want it passed on", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := dial(t).Snapshot(ctx, []string{demo.GroupDN("IT")}, nil, 0, func([]directory.User) error { return nil }); err == nil {
		t.Error("snapshot with a cancelled context succeeded")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestDialHidesThePassword(t *testing.T) {
	s := demoLDAP(t)
	_, err := directory.Dial(context.Background(), directory.Config{URL: s.URL(), BindDN: readerDN,
		BindPassword: "not-the-password-42", BaseDN: demo.Suffix, AllowPlaintextBind: true})
	if err == nil {
		t.Fatal("bind with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "not-the-password-42") || !strings.Contains(err.Error(), readerDN) {
		t.Errorf("err = %v: want the bind DN named and the password hidden", err)
	}
}

func TestGroupExistsAndGroups(t *testing.T) {
	r := dial(t)
	ctx := context.Background()
	for dn, want := range map[string]bool{
		demo.GroupDN("Sales"):                     true,
		"CN=Sales, OU=Groups, DC=example, DC=com": true,
		"cn=Gone,ou=Groups,dc=example,dc=com":     false,
		"cn=Gone,ou=Nowhere,dc=example,dc=com":    false,
		keys(demoUsers())[0]:                      false, // a user is not a group
		"ou=Groups,dc=example,dc=com":             false,
	} {
		got, err := r.GroupExists(ctx, dn)
		if err != nil {
			t.Errorf("GroupExists(%s): %v", dn, err)
		}
		if got != want {
			t.Errorf("GroupExists(%s) = %v, want %v", dn, got, want)
		}
	}
	if _, err := r.GroupExists(ctx, "not a dn"); err == nil || !strings.Contains(err.Error(), "not a dn") {
		t.Errorf("GroupExists(invalid): err = %v, want one naming the DN", err)
	}

	var want []string
	for _, e := range demo.Org().Entries {
		if strings.HasSuffix(e.DN, ","+demo.GroupsDN) {
			want = append(want, strings.ToLower(e.DN))
		}
	}
	sort.Strings(want)
	got := mustGroups(t, r)
	for i := range got {
		got[i] = strings.ToLower(got[i])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Groups() = %v, want %v", got, want)
	}
}

// recordingIndex is the in-memory index, recording how Snapshot uses it.
type recordingIndex struct {
	directory.MembershipIndex
	added, looked    []int // groups per AddGroups, DNs per Lookup
	resolves, closes int
}

func newRecordingIndex() *recordingIndex {
	return &recordingIndex{MembershipIndex: directory.NewMemoryIndex()}
}

func (x *recordingIndex) AddGroups(ctx context.Context, gs []directory.GroupMembers) error {
	x.added = append(x.added, len(gs))
	return x.MembershipIndex.AddGroups(ctx, gs)
}

func (x *recordingIndex) Resolve(ctx context.Context, requested []string) ([]string, error) {
	x.resolves++
	return x.MembershipIndex.Resolve(ctx, requested)
}

func (x *recordingIndex) Lookup(ctx context.Context, dns []string) (map[string][]int, error) {
	x.looked = append(x.looked, len(dns))
	return x.MembershipIndex.Lookup(ctx, dns)
}

func (x *recordingIndex) Close(ctx context.Context) error {
	x.closes++
	return x.MembershipIndex.Close(ctx)
}

func sum(ns []int) int {
	n := 0
	for _, v := range ns {
		n += v
	}
	return n
}

// With a membership index, the reader never holds more than a page of groups or users:
// that is what keeps its memory independent of the directory's size.
func TestSnapshotWithStreamsPagesThroughTheIndex(t *testing.T) {
	const page = 8
	r := dial(t, func(c *directory.Config) { c.PageSize = page })
	groups := []string{demo.GroupDN("Engineering"), demo.GroupDN("All-Staff"), "cn=Gone,ou=Groups,dc=example,dc=com"}
	want, wantStats, _ := snapshot(t, r, groups, []string{"l"}, 0)

	idx := newRecordingIndex()
	got := map[string]directory.User{}
	stats, err := r.SnapshotWith(context.Background(), idx, groups, []string{"l"}, 0, func(us []directory.User) error {
		for _, u := range us {
			got[u.DN] = u
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(stats, wantStats) {
		t.Errorf("SnapshotWith gave %d users (stats %+v), Snapshot %d (stats %+v)", len(got), stats, len(want), wantStats)
	}
	nGroups := len(mustGroups(t, r))
	if len(idx.added) < nGroups/page || sum(idx.added) != nGroups || slices.Max(idx.added) > page {
		t.Errorf("groups added in parts of %v, want %d groups in parts of at most %d", idx.added, nGroups, page)
	}
	if len(idx.looked) < demoPeople/page || sum(idx.looked) != demoPeople || slices.Max(idx.looked) > page {
		t.Errorf("users looked up in parts of %v, want %d users in parts of at most %d", idx.looked, demoPeople, page)
	}
	if idx.resolves != 1 || idx.closes != 1 {
		t.Errorf("Resolve called %d times, Close %d times; want once each", idx.resolves, idx.closes)
	}
}

// The index is closed (a store-backed one drops its rows) however the snapshot ends.
func TestSnapshotWithClosesTheIndexOnFailure(t *testing.T) {
	r := dial(t, func(c *directory.Config) { c.BaseDN = "ou=Nowhere,dc=example,dc=com" })
	idx := newRecordingIndex()
	if _, err := r.SnapshotWith(context.Background(), idx, []string{demo.GroupDN("IT")}, nil, 0,
		func([]directory.User) error { return nil }); err == nil {
		t.Fatal("snapshot under a missing base succeeded")
	}
	if idx.closes != 1 {
		t.Errorf("directory error: Close called %d times, want 1", idx.closes)
	}

	idx = newRecordingIndex()
	_, err := dial(t).SnapshotWith(context.Background(), idx, []string{demo.GroupDN("IT")}, nil, 0,
		func([]directory.User) error { return errorString("disk full") })
	if err == nil || idx.closes != 1 {
		t.Errorf("emit error: err = %v, Close called %d times; want an error and 1", err, idx.closes)
	}

	failing := &failingIndex{MembershipIndex: directory.NewMemoryIndex()}
	_, err = dial(t).SnapshotWith(context.Background(), failing, []string{demo.GroupDN("IT")}, nil, 0,
		func([]directory.User) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "index gone") {
		t.Errorf("failing Close: err = %v, want it reported", err)
	}
}

type failingIndex struct{ directory.MembershipIndex }

func (failingIndex) Close(context.Context) error { return errorString("index gone") }
