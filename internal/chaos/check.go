package chaos

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// The invariants, as the table and the violations name them.
const (
	InvNoDuplicates    = "no duplicate accounts"
	InvKnownExternalID = "every externalId is a directory user"
	InvSeatsBounded    = "active linked accounts holding a product <= its seats"
	InvSeatsMatch      = "seats in PostgreSQL == entitlements held in the target"
	InvInScopeCovered  = "every in-scope user is provisioned or has a current failure"
	InvNoSuspension    = "no suspension of an in-scope user"
	InvOneHistoryRow   = "one history row per action"
)

// Invariants lists them in the order they are checked.
var Invariants = []string{InvNoDuplicates, InvKnownExternalID, InvSeatsBounded, InvSeatsMatch,
	InvInScopeCovered, InvNoSuspension, InvOneHistoryRow}

// DirUser is a directory user as the checker sees it.
type DirUser struct {
	ExternalID string // entryUUID
	UserName   string // mail
	InScope    bool   // enabled, and a member (nested included) of a ruled group
}

// Action is an admin action the harness sent to the organization's workflow, under an actor
// of its own: it must leave exactly one history row (status "rejected" when Rejected).
type Action struct {
	Actor    string
	Signal   string
	Rejected bool
}

// Facts are what the checker reads: the directory, the target's own state over SCIM, the
// store, and what the proxy saw reach the target.
type Facts struct {
	Directory   []DirUser
	Accounts    []*scim.User
	Licenses    []store.License
	SeatHolders map[string]map[string]bool // product -> externalIds holding a seat row
	Failures    []store.FailureRecord
	History     []vocab.Event
	Runs        []store.Run
	Deactivated map[string]int // account ids a write that reached the target set inactive
	Actions     []Action
}

// Violation is one broken invariant, described for a reader.
type Violation struct {
	Invariant string
	Detail    string
}

func (v Violation) String() string { return v.Invariant + ": " + v.Detail }

// Check returns the violations of every invariant in f (none: all hold).
func Check(f Facts) []Violation {
	var out []Violation
	add := func(inv, format string, args ...any) {
		out = append(out, Violation{inv, fmt.Sprintf(format, args...)})
	}
	dir := map[string]DirUser{}
	for _, u := range f.Directory {
		dir[u.ExternalID] = u
	}
	failed := map[string]store.FailureRecord{}
	for _, x := range f.Failures {
		failed[x.ExternalID] = x
	}

	// 0 duplicate accounts: one account per userName and per externalId.
	byName, byExt := map[string][]string{}, map[string][]string{}
	for _, a := range f.Accounts {
		byName[strings.ToLower(a.UserName)] = append(byName[strings.ToLower(a.UserName)], a.ID)
		if a.ExternalID != "" {
			byExt[a.ExternalID] = append(byExt[a.ExternalID], a.ID)
		}
	}
	for _, k := range sortedKeys(byName) {
		if ids := byName[k]; len(ids) > 1 {
			add(InvNoDuplicates, "userName %s has %d accounts (%s)", k, len(ids), strings.Join(ids, ", "))
		}
	}
	for _, k := range sortedKeys(byExt) {
		if ids := byExt[k]; len(ids) > 1 {
			add(InvNoDuplicates, "externalId %s has %d accounts (%s)", k, len(ids), strings.Join(ids, ", "))
		}
	}

	// Every account usersync linked names a directory user.
	linked := map[string]*scim.User{} // by externalId
	for _, a := range f.Accounts {
		if a.ExternalID == "" {
			continue // a pre-existing account usersync does not manage
		}
		linked[a.ExternalID] = a
		if _, ok := dir[a.ExternalID]; !ok {
			add(InvKnownExternalID, "account %s (%s) has externalId %s, which no directory user has", a.ID, a.UserName, a.ExternalID)
		}
	}

	// Seats: never more active holders than seats; the seats counted are the entitlements
	// the linked accounts hold, user by user.
	for _, l := range f.Licenses {
		active := 0
		target := map[string]bool{}
		for _, a := range f.Accounts {
			if a.ExternalID == "" || !slices.Contains(a.Products, l.Product) {
				continue
			}
			target[a.ExternalID] = true
			if a.Active {
				active++
			}
		}
		if active > l.Seats {
			add(InvSeatsBounded, "%s: %d active linked accounts hold it, %d seats", l.Product, active, l.Seats)
		}
		held := f.SeatHolders[l.Product]
		if l.Used != len(target) || len(held) != len(target) {
			add(InvSeatsMatch, "%s: %d seats used in PostgreSQL (%d seat rows), %d linked accounts hold it in the target%s",
				l.Product, l.Used, len(held), len(target), diff(held, target, linked, dir))
		} else if d := diff(held, target, linked, dir); d != "" {
			add(InvSeatsMatch, "%s: same count, different users%s", l.Product, d)
		}
	}

	// Every in-scope user is provisioned (an active account of its own) or has a failure.
	for _, u := range f.Directory {
		if !u.InScope {
			continue
		}
		a := linked[u.ExternalID]
		if (a == nil || !a.Active) && failed[u.ExternalID].Type == "" {
			state := "no account"
			if a != nil {
				state = "an inactive account " + a.ID
			}
			add(InvInScopeCovered, "%s (%s): %s and no current failure", u.UserName, u.ExternalID, state)
		}
	}

	// No in-scope user was ever suspended (a deactivating write reached the target), nor is.
	byID := map[string]*scim.User{}
	for _, a := range f.Accounts {
		byID[a.ID] = a
	}
	for _, id := range sortedKeys(f.Deactivated) {
		a := byID[id]
		if a == nil || a.ExternalID == "" {
			continue
		}
		if u := dir[a.ExternalID]; u.InScope {
			add(InvNoSuspension, "%s (account %s) is in scope and was set inactive %d time(s)", u.UserName, id, f.Deactivated[id])
		}
	}

	out = append(out, checkHistory(f)...)
	return out
}

// checkHistory: one row per run start and finish, per (run, user, failure type), and per
// admin action.
func checkHistory(f Facts) []Violation {
	var out []Violation
	add := func(format string, args ...any) {
		out = append(out, Violation{InvOneHistoryRow, fmt.Sprintf(format, args...)})
	}
	count := map[string]int{}
	for _, e := range f.History {
		run, _ := e.Details["run"].(string)
		switch e.Type {
		case vocab.EventSync:
			count["sync|"+e.Action+"|"+run]++
		case vocab.EventFailure:
			ext, _ := e.Details["externalId"].(string)
			count["failure|"+run+"|"+ext+"|"+e.Action]++
		}
		if strings.HasPrefix(e.Actor, actorPrefix) {
			count["actor|"+e.Actor]++
			if e.Status == "rejected" {
				count["rejected|"+e.Actor]++
			}
		}
	}
	for _, r := range f.Runs {
		if r.DryRun {
			continue
		}
		if n := count["sync|sync started|"+r.RunID]; n != 1 {
			add("run %s: %d \"sync started\" rows", r.RunID, n)
		}
		if r.FinishedAt != nil {
			if n := count["sync|sync finished|"+r.RunID]; n != 1 {
				add("run %s (%s): %d \"sync finished\" rows", r.RunID, r.Status, n)
			}
		}
	}
	for _, k := range sortedKeys(count) {
		if strings.HasPrefix(k, "failure|") && count[k] > 1 {
			parts := strings.Split(k, "|")
			add("run %s, user %s: %d %s failure rows", parts[1], parts[2], count[k], parts[3])
		}
	}
	for _, a := range f.Actions {
		n := count["actor|"+a.Actor]
		if n != 1 {
			add("%s signal of %s: %d history rows", a.Signal, a.Actor, n)
			continue
		}
		if a.Rejected && count["rejected|"+a.Actor] != 1 {
			add("malformed %s signal of %s: recorded, but not as rejected", a.Signal, a.Actor)
		}
	}
	return out
}

// diff names up to five users whose seat rows and target entitlements differ.
func diff(held, target map[string]bool, linked map[string]*scim.User, dir map[string]DirUser) string {
	name := func(ext string) string {
		if u, ok := dir[ext]; ok {
			return u.UserName
		}
		if a := linked[ext]; a != nil {
			return a.UserName
		}
		return ext
	}
	var seatOnly, targetOnly []string
	for _, ext := range sortedKeys(held) {
		if !target[ext] {
			seatOnly = append(seatOnly, name(ext))
		}
	}
	for _, ext := range sortedKeys(target) {
		if !held[ext] {
			targetOnly = append(targetOnly, name(ext))
		}
	}
	s := ""
	if len(seatOnly) > 0 {
		s += fmt.Sprintf("; a seat row but no entitlement in the target: %s", clipList(seatOnly))
	}
	if len(targetOnly) > 0 {
		s += fmt.Sprintf("; the entitlement in the target but no seat row: %s", clipList(targetOnly))
	}
	return s
}

func clipList(xs []string) string {
	if len(xs) > 5 {
		return strings.Join(xs[:5], ", ") + fmt.Sprintf(" and %d more", len(xs)-5)
	}
	return strings.Join(xs, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// actorPrefix marks the actors of the harness's own admin actions.
const actorPrefix = "chaos-"

// Gather reads the facts of s: the directory and the target directly (not through the gate
// or the proxy), and the store.
func (s *Stack) Gather(ctx context.Context, actions []Action) (Facts, error) {
	f := Facts{Deactivated: s.Proxy.Deactivated(), Actions: actions}
	var err error
	if f.Directory, err = ReadDirectory(s.LDAPURL(), s.Slapd.AdminDN, ldapSecret, s.Org.Suffix, s.ruledGroups(ctx)); err != nil {
		return f, err
	}
	if err := s.TargetClient().ListUsers(ctx, s.Ext, func(u *scim.User) error {
		f.Accounts = append(f.Accounts, u)
		return nil
	}); err != nil {
		return f, fmt.Errorf("list the target's users: %w", err)
	}
	if f.Licenses, err = s.Store.Licenses(ctx, org); err != nil {
		return f, err
	}
	if _, f.SeatHolders, err = s.Store.SeatState(ctx, org); err != nil {
		return f, err
	}
	if f.Failures, err = s.Store.Failures(ctx, org, vocab.Filter{}); err != nil {
		return f, err
	}
	if f.History, err = s.Store.History(ctx, org, store.HistoryFilter{Limit: 1_000_000}); err != nil {
		return f, err
	}
	if f.Runs, err = s.Store.Runs(ctx, org, 10_000); err != nil {
		return f, err
	}
	return f, nil
}

// ruledGroups are the DNs the organization's rules name (read back from the store).
func (s *Stack) ruledGroups(ctx context.Context) []string {
	rs, err := s.Store.Rules(ctx, org)
	must(s.t, err)
	var out []string
	for _, r := range rs {
		out = append(out, r.GroupDN)
	}
	return out
}

// ReadDirectory reads every user and group and works out scope on its own (an independent
// reading of the rules' semantics): enabled users that are members, directly or through
// nested groups, of a ruled group.
func ReadDirectory(url, bindDN, password, base string, ruled []string) ([]DirUser, error) {
	conn, err := ldap.DialURL(url)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	defer conn.Close()
	if err := conn.Bind(bindDN, password); err != nil {
		return nil, fmt.Errorf("directory bind: %w", err)
	}
	search := func(filter string, attrs ...string) ([]*ldap.Entry, error) {
		res, err := conn.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, filter, attrs, nil), 500)
		if err != nil {
			return nil, fmt.Errorf("directory search %s: %w", filter, err)
		}
		return res.Entries, nil
	}
	people, err := search("(objectClass=inetOrgPerson)", "entryUUID", "mail", "employeeType")
	if err != nil {
		return nil, err
	}
	groups, err := search("(objectClass=groupOfNames)", "member")
	if err != nil {
		return nil, err
	}
	members := map[string][]string{}
	for _, g := range groups {
		for _, m := range g.GetAttributeValues("member") {
			members[rules.NormalizeDN(g.DN)] = append(members[rules.NormalizeDN(g.DN)], rules.NormalizeDN(m))
		}
	}
	// Everything reachable from a ruled group, cycles included.
	reached := map[string]bool{}
	var walk func(dn string)
	walk = func(dn string) {
		if reached[dn] {
			return
		}
		reached[dn] = true
		for _, m := range members[dn] {
			walk(m)
		}
	}
	for _, g := range ruled {
		walk(rules.NormalizeDN(g))
	}
	var out []DirUser
	for _, p := range people {
		out = append(out, DirUser{ExternalID: p.GetAttributeValue("entryUUID"), UserName: p.GetAttributeValue("mail"),
			InScope: reached[rules.NormalizeDN(p.DN)] && p.GetAttributeValue("employeeType") != "disabled"})
	}
	return out, nil
}
