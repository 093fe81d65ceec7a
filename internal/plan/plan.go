package plan

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/vocab"
)

// Safety threshold defaults (spec section 10).
const (
	DefaultSuspendThresholdPercent = 10
	DefaultSuspendThresholdMax     = 500
)

// Plan computes the work of one sync from in-memory input. It is deterministic: the same
// input, in any slice or map order, gives the same result. Stream plans a large directory
// kept in a database with the same Planner decisions, one user at a time.
//
//   - In scope: enabled users matched by at least one rule. Each gets Build + Check (its
//     directory entry's Problems, then CheckUser); a failing check is a Fail item.
//   - Linked (in Applied) and unchanged, not failed, with seats in order: counted in
//     Unchanged, no item. Linked and different (or failed): Update with Changed = Diff.
//     Not linked: Create.
//   - Seats: see SeatLedger. Seats released in this plan count as free only next sync.
//   - Out of scope, linked and active: Suspend, unless the directory read looks wrong
//     (empty, or under half the last in-scope count: no suspensions at all) or there are
//     more suspensions than the threshold allows (all held as suspension_held unless
//     ApproveSuspensions).
//   - Retry: only currently failed users matching the filter are planned, including their
//     suspension if they are now out of scope; no other suspension, no other item. Users
//     outside the filter are not counted in Unchanged.
//   - Resolved: failed users now out of scope with nothing to do, and users holding seats
//     without a linked account or an unknown write. Never when the read looks wrong (scope
//     is then unknown).
//   - A write whose outcome is unknown (Reconcile) keeps its user within reach: never
//     Unchanged in scope; out of scope, suspended, linked or not (Unlinked).
func Plan(in Input) Result {
	p := NewPlanner(in)
	held := heldBy(in.Held)
	var res Result
	seen := make(map[string]bool, len(in.Users))
	var candidates []candidate
	var suspensions, resolved []string
	names := map[string]string{} // of suspensions: for those never linked (Unlinked)
	dup := 0

	route := func(id, userName string, v Verdict) {
		switch {
		case v.InScope:
			res.InScope++
		case v.Suspend:
			suspensions = append(suspensions, id)
			names[id] = userName
		case v.Resolved:
			resolved = append(resolved, id)
		}
		switch {
		case v.Unchanged:
			res.Unchanged++
		case v.Item != nil && len(v.Item.NewSeats) > 0:
			candidates = append(candidates, candidate{item: *v.Item, key: v.SeatKey})
		case v.Item != nil:
			res.Items = append(res.Items, *v.Item)
		}
	}
	for _, u := range in.Users {
		if u.ExternalID != "" && seen[u.ExternalID] {
			dup++
			continue
		}
		seen[u.ExternalID] = true
		_, reconcile := in.Reconcile[u.ExternalID]
		r := Row{User: u, Held: held[u.ExternalID], Reconcile: reconcile}
		if ap, ok := in.Applied[u.ExternalID]; ok {
			r.Applied = &ap
		}
		if f, ok := in.Failed[u.ExternalID]; ok {
			r.Failure = &f
		}
		route(u.ExternalID, u.UserName, p.User(r))
	}
	// Linked, failed, unsettled (an unknown write) or seat-holding users the read did not
	// return are out of scope too.
	for _, k := range absent(in, seen, held) {
		route(k.ExternalID, k.UserName, p.Left(k))
	}
	if dup > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("directory read listed %d users twice (same externalId): later copies ignored", dup))
	}

	sort.Slice(candidates, func(i, j int) bool { return candidates[i].key.Less(candidates[j].key) })
	ledger := NewSeatLedger(in.Seats, seatsUsed(in.Held))
	for _, c := range candidates {
		item := c.item
		ledger.Serve(&item)
		res.Items = append(res.Items, item)
	}

	if warning := p.SuspiciousRead(len(in.Users), res.InScope); warning != "" {
		res.Warnings = append(res.Warnings, warning)
	} else {
		slices.Sort(resolved)
		res.Resolved = resolved
		active := 0
		for _, ap := range in.Applied {
			if ap.State.Active {
				active++
			}
		}
		heldMsg := p.HoldSet(suspensions, active)
		for _, id := range suspensions {
			ap, ok := in.Applied[id]
			if !ok {
				ap = Unlinked(id, names[id]) // a write whose outcome is unknown
			}
			res.Items = append(res.Items, SuspensionItem(ap, held[id], heldMsg))
		}
		if heldMsg != "" {
			res.SuspensionsHeld = true
			res.Warnings = append(res.Warnings, heldMsg)
		}
	}

	sortItems(res.Items)
	return res
}

// absent lists what in knows of the users the read did not return (not in seen): every
// linked account, current failure, open write and seat holder, in externalId order, as a
// store streams them.
func absent(in Input, seen map[string]bool, held map[string][]string) []Known {
	var out []Known
	for id, ap := range in.Applied {
		if !seen[id] {
			_, reconcile := in.Reconcile[id]
			out = append(out, Known{ExternalID: id, Linked: true, Active: ap.State.Active, Reconcile: reconcile,
				UserName: ap.State.UserName, Failure: failureOf(in.Failed, id), Held: held[id]})
		}
	}
	unlinked := map[string]bool{}
	for id := range in.Failed {
		unlinked[id] = true
	}
	for id := range in.Reconcile {
		unlinked[id] = true
	}
	for id := range held {
		unlinked[id] = true
	}
	for id := range unlinked {
		if _, linked := in.Applied[id]; !linked && !seen[id] {
			name, reconcile := in.Reconcile[id]
			out = append(out, Known{ExternalID: id, Reconcile: reconcile, UserName: name,
				Failure: failureOf(in.Failed, id), Held: held[id]})
		}
	}
	slices.SortFunc(out, func(a, b Known) int { return strings.Compare(a.ExternalID, b.ExternalID) })
	return out
}

func failureOf(failed map[string]vocab.Failure, id string) *vocab.Failure {
	if f, ok := failed[id]; ok {
		return &f
	}
	return nil
}

// seatsUsed counts the holders of each product.
func seatsUsed(held map[string]map[string]bool) map[string]int {
	used := map[string]int{}
	for prod, holders := range held {
		for _, ok := range holders {
			if ok {
				used[prod]++
			}
		}
	}
	return used
}

type candidate struct {
	item Item
	key  SeatKey
}

// Planner makes the per-user decisions of a plan. It holds the rules and settings, never
// the users: a caller streams the directory through it.
type Planner struct {
	in    Input // rules, mappings, domains, retry filter, thresholds; per-user fields unused
	rules []rules.Rule
}

// NewPlanner prepares in's rules once, so that each user costs no rule sorting.
func NewPlanner(in Input) *Planner {
	return &Planner{in: in, rules: prepareRules(in.Rules)}
}

// Row is one directory user and what the store knows about it.
type Row struct {
	User    directory.User
	Applied *Applied       // last applied state; nil when not linked
	Failure *vocab.Failure // current failure; nil when none
	Held    []string       // sorted products whose seat the user holds
	// Reconcile: the outcome of the user's last write is unknown (Input.Reconcile).
	Reconcile bool
}

// Known is what the store knows of a user besides the directory: the linked account (by its
// columns, without its applied state), the current failure and the seats held. It is all
// Left needs; a store streams it for the users a read did not return.
type Known struct {
	ExternalID string
	Linked     bool // there is a linked account (an applied state)
	Active     bool // the linked account is active
	// Reconcile: the outcome of the user's last write is unknown (Input.Reconcile): the
	// target may hold an account for the user, linked or not, active or not.
	Reconcile bool
	// UserName is the name a retry filter matches: the linked account's, else the
	// directory's, else (for a user the read did not return) the one its open write sent,
	// else "".
	UserName string
	Failure  *vocab.Failure
	Held     []string // sorted products whose seat the user holds
	// Touched: a delta run's directory changes touched the user (Input.Delta; Stream
	// leaves the untouched linked accounts out of the leaver pass).
	Touched bool
}

// known is what Left needs of a directory user: a linked account's name wins over the
// directory's.
func (r Row) known() Known {
	k := Known{ExternalID: r.User.ExternalID, UserName: r.User.UserName, Failure: r.Failure, Held: r.Held, Reconcile: r.Reconcile}
	if ap := r.Applied; ap != nil {
		k.Linked, k.Active, k.UserName = true, ap.State.Active, ap.State.UserName
	}
	return k
}

// Verdict is the decision for one user. At most one of Unchanged, Item, Suspend and
// Resolved is set; none when a retry filter leaves the user out.
type Verdict struct {
	InScope   bool
	Unchanged bool
	// Item is the user's work. With NewSeats it is a seat candidate: a SeatLedger, serving
	// candidates in SeatKey order, grants the seats or fails the item (Serve).
	Item    *Item
	SeatKey SeatKey
	// Suspend: out of scope, and an account is within reach: linked and active, or possibly
	// written by a write whose outcome is unknown (Reconcile). The caller builds the item
	// (SuspensionItem, from the applied state or Unlinked) once it knows how many there are
	// (HoldSuspensions).
	Suspend bool
	// Resolved: out of scope with nothing to do in the target, and failed or holding seats
	// without a linked account: the failure can be cleared and the seats the linked account
	// does not hold go back (a reservation whose write never started).
	Resolved bool
}

// User decides for one directory user.
func (p *Planner) User(r Row) Verdict {
	u := r.User
	a, ok := p.resolve(u)
	if !ok {
		return p.Left(r.known())
	}
	if !p.selected(r.Failure, u.ExternalID, u.UserName) {
		return Verdict{InScope: true}
	}
	return p.planUser(r, a)
}

// Left decides for a user out of scope: disabled, matched by no rule, or not returned by
// the directory read at all. An account within reach is suspended: a linked active one, or
// one a write whose outcome is unknown may have created or reactivated (the provisioning
// step reads the target first, and links and suspends what it finds). A failure, or seats
// held without a linked account, with nothing left to do are resolved. It is the only
// place that decides who left.
func (p *Planner) Left(k Known) Verdict {
	if !p.selected(k.Failure, k.ExternalID, k.UserName) {
		return Verdict{}
	}
	suspend := k.Linked && k.Active || k.Reconcile
	return Verdict{Suspend: suspend, Resolved: !suspend && (k.Failure != nil || !k.Linked && len(k.Held) > 0)}
}

// Settled reports, without the applied state itself, whether u needs nothing: in scope,
// valid, not failed, holding exactly the seats of its products, and its desired state
// hashes to appliedHash ("" when not linked). Settled users are exactly those User would
// find Unchanged; a streaming caller uses it to avoid decoding the applied state.
func (p *Planner) Settled(u directory.User, appliedHash string, failed bool, held []string) bool {
	if appliedHash == "" || failed || p.in.Retry != nil {
		return false
	}
	a, ok := p.resolve(u)
	if !ok {
		return false
	}
	d := Build(u, a, p.in.Mappings)
	if Check(u, d, p.in.ValidatedDomains) != nil || !slices.Equal(held, setOf(d.Products)) {
		return false
	}
	return d.Hash() == appliedHash
}

// SuspiciousRead explains why this directory read must not suspend anyone, or returns "".
// read counts every user the read returned, in scope or not.
func (p *Planner) SuspiciousRead(read, inScope int) string {
	if read == 0 {
		return "directory read returned 0 users: no suspensions, no failures cleared"
	}
	if prev := p.in.PreviousSnapshotSize; prev > 0 && inScope*2 < prev {
		return fmt.Sprintf("directory read is suspiciously small: %d users in scope, last good read had %d: no suspensions, no failures cleared", inScope, prev)
	}
	return ""
}

// HoldSuspensions applies the safety threshold to n suspensions out of active linked users:
// more than SuspendThresholdMax, or more than SuspendThresholdPercent of them (at least 1 is
// always allowed), are all held unless ApproveSuspensions. It returns the reason, or "".
func (p *Planner) HoldSuspensions(n, active int) string {
	if p.in.ApproveSuspensions {
		return ""
	}
	return p.overThreshold(n, active)
}

// HoldSet is HoldSuspensions for the suspensions of the users ids (externalIds). An approval
// that names a held set (ApprovedHeld) releases only that set: if users left or came back
// since the admin looked, the suspensions are held again, for a new approval.
func (p *Planner) HoldSet(ids []string, active int) string {
	msg := p.HoldSuspensions(len(ids), active)
	approved := p.in.ApprovedHeld
	if msg != "" || approved == "" || p.overThreshold(len(ids), active) == "" {
		return msg
	}
	if d := vocab.HeldDigest(ids); d != approved {
		return fmt.Sprintf("suspension held: this sync would suspend %d users (digest %s), not the set approved (digest %s); check them and approve again",
			len(ids), d, approved)
	}
	return ""
}

// overThreshold is why n suspensions out of active linked users are more than the safety
// threshold allows, or "".
func (p *Planner) overThreshold(n, active int) string {
	pct, max := p.in.SuspendThresholdPercent, p.in.SuspendThresholdMax
	if pct <= 0 {
		pct = DefaultSuspendThresholdPercent
	}
	if max <= 0 {
		max = DefaultSuspendThresholdMax
	}
	allowed := min(max, active*pct/100)
	if allowed < 1 {
		allowed = 1
	}
	if n <= allowed {
		return ""
	}
	return fmt.Sprintf("suspension held: this sync would suspend %d of %d active linked users, above the safety threshold of %d (%d%%, at most %d); approve the suspensions or fix the directory or rules",
		n, active, allowed, pct, max)
}

// SuspendItem is the suspension of a linked account: inactive, access removed, seats given
// back; the account and its identity stay.
func SuspendItem(ap Applied, held []string) Item {
	d := ap.State
	d.Active = false
	d.Role, d.UserGroup, d.SettingsTemplate = "", "", ""
	d.Products, d.DeviceGroups = nil, nil
	return Item{ExternalID: ap.ExternalID, UserName: ap.State.UserName, Action: Suspend, Desired: d,
		Changed: Diff(ap.State, d), ReleaseSeats: slices.Clone(held)}
}

// Unlinked is what is known of an account that a write whose outcome is unknown may have
// created for a user never linked: its externalId and the userName the write sent. Its
// suspension (SuspendItem) is completed by the provisioning step from what the target holds.
func Unlinked(externalID, userName string) Applied {
	return Applied{ExternalID: externalID, State: Desired{ExternalID: externalID, UserName: userName, Active: true}}
}

// SuspensionItem is the suspension of a linked account in a sync whose suspensions are held
// for holdMsg (HoldSuspensions; "" when they are not): then it fails suspension_held.
func SuspensionItem(ap Applied, held []string, holdMsg string) Item {
	it := SuspendItem(ap, held)
	if holdMsg != "" {
		FailItem(&it, vocab.Failure{Type: vocab.SuspensionHeld, Message: holdMsg})
	}
	return it
}

// FailItem turns planned work into a failure decided before provisioning: nothing is
// written and no seat is taken or released.
func FailItem(it *Item, f vocab.Failure) {
	it.Action, it.Failure = Fail, &f
	it.Changed, it.NewSeats, it.ReleaseSeats = nil, nil, nil
}

// SeatKey orders the users who need new seats: best rule priority among the products they
// need, then lower-case userName, then externalId.
type SeatKey struct {
	Priority   int
	SortName   string // SortName(userName)
	ExternalID string
}

// Less is the seat order.
func (k SeatKey) Less(o SeatKey) bool {
	if k.Priority != o.Priority {
		return k.Priority < o.Priority
	}
	if k.SortName != o.SortName {
		return k.SortName < o.SortName
	}
	return k.ExternalID < o.ExternalID
}

// Sortable encodes the key so that byte order is the seat order:
// bytes.Compare(a.Sortable(), b.Sortable()) < 0 exactly when a.Less(b). A store orders seat
// candidates by these bytes and by nothing else.
func (k SeatKey) Sortable() []byte {
	b := make([]byte, 8, 8+len(k.SortName)+len(k.ExternalID)+4)
	binary.BigEndian.PutUint64(b, uint64(int64(k.Priority))^(1<<63)) // sign flipped: negative first
	return appendOrdered(appendOrdered(b, k.SortName), k.ExternalID)
}

// SeatOrder is the stored seat order of an item: k.Sortable() when the item takes new seats
// (a seat candidate, served by a SeatLedger in this order), nil when it does not.
func SeatOrder(it Item, k SeatKey) []byte {
	if len(it.NewSeats) == 0 {
		return nil
	}
	return k.Sortable()
}

// ItemOrder encodes the order of items in a plan's result (lower-case userName, then
// externalId) so that byte order is that order: a store lists items by these bytes.
func ItemOrder(it Item) []byte {
	return appendOrdered(appendOrdered(nil, SortName(it.UserName)), it.ExternalID)
}

// appendOrdered appends s so that concatenations compare bytewise as their parts do in turn:
// 0x00 is escaped as 0x00 0xFF and s ends with 0x00 0x01, below any byte s may go on with.
func appendOrdered(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xFF)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, 0, 1)
}

// SortName is the userName as items and seats are ordered by.
func SortName(userName string) string { return strings.ToLower(userName) }

// SeatLedger hands out seats to candidates served in SeatKey order. It holds one counter
// per product, whatever the number of users.
type SeatLedger struct {
	seats, free map[string]int
}

// NewSeatLedger starts from the seats bought and the seats in use, per product (a product
// in use without a license row has no seats: its free count is negative).
func NewSeatLedger(seats, used map[string]int) *SeatLedger {
	l := &SeatLedger{seats: seats, free: map[string]int{}}
	for prod, n := range seats {
		l.free[prod] = n
	}
	for prod, n := range used {
		l.free[prod] -= n
	}
	return l
}

// Take gives the user a seat of each product, all or nothing: one short product fails the
// user (the first, in sorted order, is reported) and no seat is taken.
func (l *SeatLedger) Take(products []string) *vocab.Failure {
	for _, prod := range products {
		if l.free[prod] <= 0 {
			return OutOfLicensesFailure(prod, l.seats[prod])
		}
	}
	for _, prod := range products {
		l.free[prod]--
	}
	return nil
}

// Serve gives a seat candidate (Item.NewSeats) its seats, or fails it out_of_licenses
// (FailItem) when one product is short. It reports whether the seats were granted.
func (l *SeatLedger) Serve(it *Item) bool {
	if f := l.Take(it.NewSeats); f != nil {
		FailItem(it, *f)
		return false
	}
	return true
}

// OutOfLicensesFailure is the failure of a user who finds no free seat of product.
func OutOfLicensesFailure(product string, seats int) *vocab.Failure {
	msg := fmt.Sprintf("no free seat for product %q (%d seats, all assigned)", product, seats)
	if seats <= 0 {
		msg = fmt.Sprintf("no free seat for product %q (no seats configured)", product)
	}
	return &vocab.Failure{Type: vocab.OutOfLicenses, Product: product, Message: msg}
}

// prepareRules normalizes and sorts the rules once, so Resolve does no work per user.
func prepareRules(rs []rules.Rule) []rules.Rule {
	out := slices.Clone(rs)
	for i := range out {
		out[i].GroupDN = rules.NormalizeDN(out[i].GroupDN)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority < out[j].Priority
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// heldBy inverts Input.Held: externalId -> sorted products it holds a seat of.
func heldBy(held map[string]map[string]bool) map[string][]string {
	out := map[string][]string{}
	for _, product := range slices.Sorted(maps.Keys(held)) {
		for id, ok := range held[product] {
			if ok {
				out[id] = append(out[id], product)
			}
		}
	}
	return out
}

// resolve returns the assignment of an enabled user matched by a rule.
func (p *Planner) resolve(u directory.User) (rules.Assignment, bool) {
	if u.Disabled {
		return rules.Assignment{}, false
	}
	groups := make([]string, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = rules.NormalizeDN(g) // cheap insurance: a mismatch here would suspend
	}
	return rules.Resolve(p.rules, groups)
}

// planUser plans one in-scope user.
func (p *Planner) planUser(r Row, a rules.Assignment) Verdict {
	u := r.User
	d := Build(u, a, p.in.Mappings)
	item := Item{ExternalID: u.ExternalID, UserName: u.UserName, Desired: d}
	v := Verdict{InScope: true, Item: &item}
	if f := Check(u, d, p.in.ValidatedDomains); f != nil {
		item.Action, item.Failure = Fail, f
		if r.Applied == nil && !r.Reconcile {
			// Seats held without an account or a write: a reservation never used.
			item.ReleaseSeats = slices.Clone(r.Held)
		}
		return v
	}
	priority := math.MaxInt
	for _, prod := range d.Products {
		if !slices.Contains(r.Held, prod) {
			item.NewSeats = append(item.NewSeats, prod)
			if pr, ok := a.ProductPriority[prod]; ok && pr < priority {
				priority = pr
			}
		}
	}
	for _, prod := range r.Held {
		if !slices.Contains(d.Products, prod) {
			item.ReleaseSeats = append(item.ReleaseSeats, prod)
		}
	}
	v.SeatKey = SeatKey{Priority: priority, SortName: SortName(u.UserName), ExternalID: u.ExternalID}
	if r.Applied == nil {
		item.Action = Create
		return v
	}
	item.Action = Update
	item.Changed = Diff(r.Applied.State, d)
	// Seat bookkeeping that disagrees with the applied state is repaired by an Update too,
	// and so is an applied state that a write whose outcome is unknown may have overtaken.
	if len(item.Changed) == 0 && r.Failure == nil && !r.Reconcile && len(item.NewSeats) == 0 && len(item.ReleaseSeats) == 0 {
		return Verdict{InScope: true, Unchanged: true}
	}
	return v
}

// selected reports whether the run plans this user: always, unless a retry filter is set;
// then the user must have a current failure matching every set field of the filter.
func (p *Planner) selected(f *vocab.Failure, externalID, userName string) bool {
	r := p.in.Retry
	if r == nil {
		return true
	}
	if f == nil {
		return false
	}
	if r.Type != "" && !strings.EqualFold(r.Type, f.Type) {
		return false
	}
	if r.Product != "" && !strings.EqualFold(r.Product, f.Product) {
		return false
	}
	if r.User != "" && !strings.EqualFold(r.User, userName) && !strings.EqualFold(r.User, externalID) {
		return false
	}
	return true
}

func itemLess(a, b Item) bool {
	la, lb := SortName(a.UserName), SortName(b.UserName)
	if la != lb {
		return la < lb
	}
	return a.ExternalID < b.ExternalID
}

func sortItems(items []Item) {
	sort.SliceStable(items, func(i, j int) bool { return itemLess(items[i], items[j]) })
}
