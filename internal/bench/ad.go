package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/directory"
)

// ADReads measures the directory reads of a resync against a Samba AD DC (provisioned
// under the stack's folder; it takes ports 389 and 636 and waits for another DC of this
// machine to stop) holding n users in groups of 1,000: a full read (what every sync does
// without incremental reads), then incremental reads into the organization's mirror in the
// stack's PostgreSQL (uSNChanged marks), each with its snapshot from the mirror: the first
// (a full one), the unchanged directory, and after 1% of the users changed. The notes say
// how many LDAP entries each read fetched. Only the reads: the DC is not the worker's
// directory, and the target is not written.
func ADReads(ctx context.Context, s *Stack, n int, log func(string, ...any)) ([]Row, error) {
	pw := make([]byte, 6)
	_, _ = rand.Read(pw)
	dc := &devstack.SambaDC{Dir: filepath.Join(s.Dir, "samba"), Realm: "CORP.EXAMPLE.TEST", Domain: "CORP",
		AdminPassword: "Bench-" + hex.EncodeToString(pw) + "-Pw!"}
	t0 := time.Now()
	if err := dc.Start(ctx); err != nil {
		return nil, err
	}
	defer dc.Stop()
	log("Samba AD DC up in %s", time.Since(t0).Round(time.Second))
	base := "OU=Bench," + dc.BaseDN()
	people := "OU=People," + base
	entries := []*ldap.AddRequest{ou(base), ou(people), ou("OU=Groups," + base)}
	var groups []string
	var members []string
	var groupEntries []*ldap.AddRequest // after their members: AD checks a member exists
	userDN := func(i int) string { return fmt.Sprintf("CN=user%07d,%s", i, people) }
	for i := 1; i <= n; i++ {
		sam := fmt.Sprintf("user%07d", i)
		u := ldap.NewAddRequest(userDN(i), nil)
		u.Attribute("objectClass", []string{"user"})
		u.Attribute("sAMAccountName", []string{sam})
		u.Attribute("userPrincipalName", []string{sam + "@corp.example.test"})
		u.Attribute("userAccountControl", []string{"544"})
		u.Attribute("displayName", []string{"User " + sam})
		entries = append(entries, u)
		members = append(members, userDN(i))
		if len(members) == 1000 || i == n {
			g := fmt.Sprintf("CN=Team-%03d,OU=Groups,%s", len(groups)+1, base)
			ga := ldap.NewAddRequest(g, nil)
			ga.Attribute("objectClass", []string{"group"})
			ga.Attribute("sAMAccountName", []string{fmt.Sprintf("team-%03d", len(groups)+1)})
			ga.Attribute("member", members)
			groupEntries = append(groupEntries, ga)
			groups, members = append(groups, g), nil
		}
	}
	t0 = time.Now()
	for _, es := range [][]*ldap.AddRequest{entries, groupEntries} {
		if err := devstack.LoadEntries(ctx, dc.URL(), dc.AdminDN(), dc.AdminPassword, es); err != nil {
			return nil, err
		}
	}
	log("loaded %d entries into the DC in %s", len(entries)+len(groupEntries), time.Since(t0).Round(time.Second))

	r, err := directory.Dial(ctx, directory.Config{URL: dc.URL(), BindDN: dc.AdminDN(), BindPassword: dc.AdminPassword,
		AllowPlaintextBind: true, BaseDN: base, Profile: directory.ProfileAD})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var rows []Row
	add := func(scenario string, wall time.Duration, note string) {
		row := Row{N: n, Scenario: scenario, Wall: wall, UsersPerS: float64(n) / wall.Seconds(), Note: note}
		rows = append(rows, row)
		log("%s", format(row))
	}
	users := 0
	count := func(us []directory.User) error { users += len(us); return nil }
	start := time.Now()
	stats, err := r.Snapshot(ctx, groups, nil, 0, count)
	if err != nil {
		return rows, err
	}
	add("AD: full read", time.Since(start), fmt.Sprintf("%d users, %d groups", stats.Users, stats.Groups))

	m := s.Store.Mirror("bench-ad")
	incremental := func(scenario string) error {
		users = 0
		start := time.Now()
		st, err := r.SyncMirror(ctx, m, nil, 0)
		if err != nil {
			return err
		}
		if _, err := r.SnapshotFromMirror(ctx, m, nil, groups, nil, 0, count); err != nil {
			return err
		}
		note := fmt.Sprintf("%d LDAP entries read, %d deleted, %d changed objects checked; %d users in the snapshot",
			st.Entries, st.Deleted, st.Checked, users)
		if st.Full {
			note = fmt.Sprintf("full (%s): %s", st.Reason, note)
		}
		add(scenario, time.Since(start), note)
		return nil
	}
	if err := incremental("AD: first incremental read"); err != nil {
		return rows, err
	}
	if err := incremental("AD: unchanged, incremental"); err != nil {
		return rows, err
	}
	conn, err := ldap.DialURL(dc.URL())
	if err != nil {
		return rows, err
	}
	defer conn.Close()
	if err := conn.Bind(dc.AdminDN(), dc.AdminPassword); err != nil {
		return rows, err
	}
	for i := 1; i <= n/100; i++ {
		mod := ldap.NewModifyRequest(userDN(i*100), nil)
		mod.Replace("displayName", []string{fmt.Sprintf("Renamed user%07d", i*100)})
		if err := conn.Modify(mod); err != nil {
			return rows, err
		}
	}
	if err := incremental("AD: 1% changed, incremental"); err != nil {
		return rows, err
	}
	return rows, nil
}

func ou(dn string) *ldap.AddRequest {
	a := ldap.NewAddRequest(dn, nil)
	a.Attribute("objectClass", []string{"organizationalUnit"})
	return a
}
