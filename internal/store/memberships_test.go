package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/store"
)

// membershipCase is a group graph, as pages of groups the reader would add, and what a
// snapshot must conclude from it.
type membershipCase struct {
	name        string
	pages       [][]directory.GroupMembers
	requested   []string // normalized, sorted, unique, as Snapshot passes them
	lookup      []string // one page of user DNs
	want        map[string][]int
	wantMissing []string
}

func gm(dn string, members ...string) directory.GroupMembers {
	return directory.GroupMembers{DN: dn, Members: members}
}

func membershipCases() []membershipCase {
	chain := []directory.GroupMembers{}
	chainUsers := []string{"uid=bottom"}
	chainWant := map[string][]int{"uid=bottom": {0}}
	const depth = 60
	for i := range depth {
		u := fmt.Sprintf("uid=u%d", i)
		chain = append(chain, gm(fmt.Sprintf("cn=g%d", i), fmt.Sprintf("cn=g%d", i+1), u))
		chainUsers = append(chainUsers, u)
		chainWant[u] = []int{0}
	}
	chain = append(chain, gm(fmt.Sprintf("cn=g%d", depth), "uid=bottom"))
	slices.Reverse(chain) // children before parents: a member is a group only once all pages are in

	return []membershipCase{{
		name: "nesting and cycles",
		pages: [][]directory.GroupMembers{
			{gm("cn=top", "cn=mid", "uid=a"), gm("cn=mid", "cn=leaf")},
			{gm("cn=leaf", "uid=b", "uid=c", "cn=top")}, // cycle back to the top
			{gm("cn=x", "cn=y", "uid=d"), gm("cn=y", "cn=x", "uid=c")},
			{gm("cn=self", "cn=self"), gm("cn=other", "uid=e")}, // self: an empty groupOfNames
		},
		requested: []string{"cn=leaf", "cn=self", "cn=top", "cn=x"},
		lookup:    []string{"uid=a", "uid=b", "uid=c", "uid=d", "uid=e", "uid=nobody", "cn=mid"},
		want: map[string][]int{
			"uid=a": {0, 2}, // leaf reaches top through the cycle
			"uid=b": {0, 2},
			"uid=c": {0, 2, 3},
			"uid=d": {3},
		},
	}, {
		name:      "deep chain",
		pages:     [][]directory.GroupMembers{chain[:20], chain[20:]},
		requested: []string{"cn=g0"},
		lookup:    chainUsers,
		want:      chainWant,
	}, {
		name: "a user in several requested groups, directly and nested",
		pages: [][]directory.GroupMembers{{
			gm("cn=all", "cn=eng", "cn=sales"), gm("cn=eng", "uid=ann", "cn=sre"),
			gm("cn=sre", "uid=ann", "uid=bob"), gm("cn=sales", "uid=cid", "uid=ann"),
		}},
		requested: []string{"cn=all", "cn=eng", "cn=sales", "cn=sre"},
		lookup:    []string{"uid=ann", "uid=bob", "uid=cid"},
		want:      map[string][]int{"uid=ann": {0, 1, 2, 3}, "uid=bob": {0, 1, 3}, "uid=cid": {0, 2}},
	}, {
		name:        "missing and empty requested groups",
		pages:       [][]directory.GroupMembers{{gm("cn=empty"), gm("cn=it", "uid=ivy", "uid=gone-user")}},
		requested:   []string{"cn=deleted", "cn=empty", "cn=it", "cn=zzz"},
		lookup:      []string{"uid=ivy", "uid=joe"},
		want:        map[string][]int{"uid=ivy": {2}},
		wantMissing: []string{"cn=deleted", "cn=zzz"},
	}, {
		name: "members added in ranges (AD) accumulate",
		pages: [][]directory.GroupMembers{
			{gm("cn=big", "uid=r0", "uid=r1"), gm("cn=nested", "uid=n0")},
			{gm("cn=big", "uid=r2", "cn=nested")}, // the next range of cn=big
			{gm("cn=big", "uid=r3")},
		},
		requested: []string{"cn=big"},
		lookup:    []string{"uid=r0", "uid=r1", "uid=r2", "uid=r3", "uid=n0"},
		want:      map[string][]int{"uid=r0": {0}, "uid=r1": {0}, "uid=r2": {0}, "uid=r3": {0}, "uid=n0": {0}},
	}, {
		name:        "a directory without groups",
		requested:   []string{"cn=eng"},
		lookup:      []string{"uid=ann"},
		want:        map[string][]int{},
		wantMissing: []string{"cn=eng"},
	}}
}

// runIndex drives idx as Snapshot does and returns its answers.
func runIndex(t *testing.T, ctx context.Context, idx directory.MembershipIndex, c membershipCase) (map[string][]int, []string) {
	t.Helper()
	for _, p := range c.pages {
		require.NoError(t, idx.AddGroups(ctx, p))
	}
	missing, err := idx.Resolve(ctx, c.requested)
	require.NoError(t, err)
	got, err := idx.Lookup(ctx, c.lookup)
	require.NoError(t, err)
	require.NoError(t, idx.Close(ctx))
	return got, missing
}

// The PostgreSQL index answers exactly as the in-memory one, and as the graph says.
func TestStoreMembershipIndexAnswersAsInMemory(t *testing.T) {
	st, ctx := openStore(t)
	for i, c := range membershipCases() {
		t.Run(c.name, func(t *testing.T) {
			got, missing := runIndex(t, ctx, directory.NewMemoryIndex(), c)
			require.Equal(t, c.want, got, "in memory")
			require.Equal(t, c.wantMissing, missing, "in memory: missing groups")

			run := fmt.Sprintf("usersync/acme/run/%d", i)
			got, missing = runIndex(t, ctx, st.MembershipIndex(run), c)
			require.Equal(t, c.want, got, "postgres")
			require.Equal(t, c.wantMissing, missing, "postgres: missing groups")
			require.Zero(t, membershipRows(t, ctx, st, run), "rows left after Close")
		})
	}
}

// membershipRows counts what the index keeps of a run, in all its tables.
func membershipRows(t *testing.T, ctx context.Context, st *store.Store, runID string) int {
	t.Helper()
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT
		(SELECT count(*) FROM snapshot_groups WHERE run_id=$1) +
		(SELECT count(*) FROM snapshot_group_members WHERE run_id=$1) +
		(SELECT count(*) FROM snapshot_memberships WHERE run_id=$1)`, runID).Scan(&n))
	return n
}

// Runs read at the same time (two organizations) see only their own directory, and a retry
// after a killed worker does not see the groups of the attempt that died.
func TestStoreMembershipIndexIsScopedByRun(t *testing.T) {
	st, ctx := openStore(t)
	const runA, runB = "usersync/acme/run/1", "usersync/other/run/1"
	a, b := st.MembershipIndex(runA), st.MembershipIndex(runB)
	require.NoError(t, a.AddGroups(ctx, []directory.GroupMembers{gm("cn=eng", "uid=ann")}))
	require.NoError(t, b.AddGroups(ctx, []directory.GroupMembers{gm("cn=eng", "uid=bob")}))
	for _, idx := range []directory.MembershipIndex{a, b} {
		missing, err := idx.Resolve(ctx, []string{"cn=eng"})
		require.NoError(t, err)
		require.Empty(t, missing)
	}
	got, err := a.Lookup(ctx, []string{"uid=ann", "uid=bob"})
	require.NoError(t, err)
	require.Equal(t, map[string][]int{"uid=ann": {0}}, got)
	got, err = b.Lookup(ctx, []string{"uid=ann", "uid=bob"})
	require.NoError(t, err)
	require.Equal(t, map[string][]int{"uid=bob": {0}}, got)

	// Run A's worker dies here (no Close). Its retry reads a directory where Ann left eng.
	retry := st.MembershipIndex(runA)
	require.NoError(t, retry.AddGroups(ctx, []directory.GroupMembers{gm("cn=eng", "uid=cid")}))
	_, err = retry.Resolve(ctx, []string{"cn=eng"})
	require.NoError(t, err)
	got, err = retry.Lookup(ctx, []string{"uid=ann", "uid=cid"})
	require.NoError(t, err)
	require.Equal(t, map[string][]int{"uid=cid": {0}}, got, "the dead attempt's members are gone")

	// Closing with a cancelled context (the activity was cancelled) still drops the rows.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, retry.Close(cancelled))
	require.Zero(t, membershipRows(t, ctx, st, runA))
	require.NotZero(t, membershipRows(t, ctx, st, runB), "closing run A keeps run B")

	require.NoError(t, st.DropMemberships(ctx, runB))
	require.Zero(t, membershipRows(t, ctx, st, runB))
}

// A whole snapshot of the demo directory through the PostgreSQL index gives the same users,
// groups and stats as the in-memory read, and leaves no rows behind.
func TestSnapshotThroughTheStoreIndex(t *testing.T) {
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
	st, ctx := openStore(t)
	url := demoSlapd(t, ctx)
	dir, err := directory.Dial(ctx, directory.Config{URL: url, BindDN: slapdAdmin, BindPassword: slapdPassword, AllowPlaintextBind: true,
		BaseDN: demo.Suffix, PageSize: 40})
	require.NoError(t, err)
	defer dir.Close()

	read := func(idx directory.MembershipIndex, groups []string) (map[string]directory.User, directory.Stats) {
		users := map[string]directory.User{}
		emit := func(us []directory.User) error {
			for _, u := range us {
				users[u.DN] = u
			}
			return nil
		}
		var stats directory.Stats
		var err error
		if idx == nil {
			stats, err = dir.Snapshot(ctx, groups, []string{"l"}, 64, emit)
		} else {
			stats, err = dir.SnapshotWith(ctx, idx, groups, []string{"l"}, 64, emit)
		}
		require.NoError(t, err)
		return users, stats
	}
	const run = "usersync/acme/run/e2e"
	for _, groups := range [][]string{
		{demo.GroupDN("All-Staff")}, // 300 users, nested four deep
		{demo.GroupDN("Engineering"), demo.GroupDN("All-Staff"), demo.GroupDN("Sales")},
		{demo.GroupDN("Project-Alpha")}, // a cycle
		{demo.GroupDN("Project-Beta"), demo.GroupDN("Project-Alpha")},
		{demo.GroupDN("Interns"), "cn=Gone,ou=Groups,dc=example,dc=com", demo.GroupDN("IT")}, // empty, missing
	} {
		want, wantStats := read(nil, groups)
		got, stats := read(st.MembershipIndex(run), groups)
		require.NotEmpty(t, got, "%v", groups)
		require.Equal(t, wantStats, stats, "%v", groups)
		require.Equal(t, want, got, "%v", groups)
		require.Zero(t, membershipRows(t, ctx, st, run), "%v: rows left", groups)
	}
	all, _ := read(st.MembershipIndex(run), []string{demo.GroupDN("All-Staff")})
	require.Len(t, all, 300, "All-Staff holds every demo user")
}

const (
	slapdAdmin    = "cn=admin,dc=example,dc=com"
	slapdPassword = "admin-secret-pw"
)

// demoSlapd starts a private slapd with the demo organization for this test.
func demoSlapd(t *testing.T, ctx context.Context) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "usersync-store-test-")
	require.NoError(t, err)
	s := &devstack.Slapd{Dir: dir, Suffix: demo.Suffix, AdminDN: slapdAdmin, AdminPassword: slapdPassword}
	t.Cleanup(func() {
		_ = s.Stop()
		_ = os.RemoveAll(dir)
	})
	start, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, s.Start(start))
	require.NoError(t, devstack.LoadEntries(start, s.URL(), slapdAdmin, slapdPassword, demo.Org().Entries))
	return s.URL()
}

// BenchmarkMembershipIndex100k resolves and looks up 100,000 users in groups nested three
// deep (10 divisions > 100 departments > 1000 teams of 100), the benchmark directory's shape,
// with LDAP-sized pages of 500. Run: go test -run '^$' -bench MembershipIndex -benchtime 3x
func BenchmarkMembershipIndex100k(b *testing.B) {
	const users, pageSize = 100_000, 500
	var groups []directory.GroupMembers
	var requested []string
	teamDN := func(i int) string { return fmt.Sprintf("cn=team-%04d,ou=groups", i) }
	deptDN := func(i int) string { return fmt.Sprintf("cn=dept-%03d,ou=groups", i) }
	userDN := func(i int) string { return fmt.Sprintf("uid=user%07d,ou=people", i) }
	for tm := range users / 100 {
		var m []string
		for u := tm * 100; u < tm*100+100; u++ {
			m = append(m, userDN(u))
		}
		groups = append(groups, gm(teamDN(tm), m...))
	}
	for d := range users / 1000 {
		var m []string
		for tm := d * 10; tm < d*10+10; tm++ {
			m = append(m, teamDN(tm))
		}
		groups = append(groups, gm(deptDN(d), m...))
	}
	for v := range users / 10000 {
		var m []string
		for d := v * 10; d < v*10+10; d++ {
			m = append(m, deptDN(d))
		}
		dn := fmt.Sprintf("cn=division-%02d,ou=groups", v)
		groups = append(groups, gm(dn, m...))
		requested = append(requested, dn)
	}
	slices.Sort(requested)
	dns := make([]string, users)
	for i := range dns {
		dns[i] = userDN(i)
	}

	bench := func(b *testing.B, newIndex func() directory.MembershipIndex) {
		ctx := context.Background()
		var add, resolve, lookup, closing time.Duration
		for b.Loop() {
			idx := newIndex()
			t0 := time.Now()
			for p := range slices.Chunk(groups, pageSize) {
				require.NoError(b, idx.AddGroups(ctx, p))
			}
			t1 := time.Now()
			_, err := idx.Resolve(ctx, requested)
			require.NoError(b, err)
			t2 := time.Now()
			found := 0
			for p := range slices.Chunk(dns, pageSize) {
				m, err := idx.Lookup(ctx, p)
				require.NoError(b, err)
				found += len(m)
			}
			t3 := time.Now()
			require.Equal(b, users, found)
			require.NoError(b, idx.Close(ctx))
			t4 := time.Now()
			add, resolve, lookup, closing = add+t1.Sub(t0), resolve+t2.Sub(t1), lookup+t3.Sub(t2), closing+t4.Sub(t3)
		}
		n := float64(b.N)
		b.ReportMetric(add.Seconds()/n, "add-s/op")
		b.ReportMetric(resolve.Seconds()/n, "resolve-s/op")
		b.ReportMetric(lookup.Seconds()/n, "lookup-s/op")
		b.ReportMetric(closing.Seconds()/n, "close-s/op")
	}
	b.Run("memory", func(b *testing.B) { bench(b, directory.NewMemoryIndex) })
	b.Run("postgres", func(b *testing.B) {
		st := openBenchStore(b)
		run := 0
		bench(b, func() directory.MembershipIndex { run++; return st.MembershipIndex(fmt.Sprint("bench/", run)) })
	})
}

// openBenchStore is openStore for a benchmark.
func openBenchStore(b *testing.B) *store.Store {
	st, err := store.Open(context.Background(), devstacktest.Database(b))
	require.NoError(b, err)
	b.Cleanup(st.Close)
	return st
}
