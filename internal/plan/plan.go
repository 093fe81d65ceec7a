package plan

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
)

// Safety threshold defaults (spec section 10).
const (
	DefaultSuspendThresholdPercent = 10
	DefaultSuspendThresholdMax     = 500
)

// Plan computes the work of one sync. It is deterministic: the same input, in any slice or
// map order, gives the same result.
//
//   - In scope: enabled users matched by at least one rule. Each gets Build + CheckUser;
//     a failing check is a Fail item.
//   - Linked (in Applied) and unchanged, not failed, with seats in order: counted in
//     Unchanged, no item. Linked and different (or failed): Update with Changed = Diff.
//     Not linked: Create.
//   - Seats: see allocateSeats. Seats released in this plan count as free only next sync.
//   - Out of scope, linked and active: Suspend, unless the directory read looks wrong
//     (empty, or under half the last in-scope count: no suspensions at all) or there are
//     more suspensions than the threshold allows (all held as suspension_held unless
//     ApproveSuspensions).
//   - Retry: only currently failed users matching the filter are planned, including their
//     suspension if they are now out of scope; no other suspension, no other item. Users
//     outside the filter are not counted in Unchanged.
//   - Resolved: failed users now out of scope with nothing to do. Never when the read looks
//     wrong (scope is then unknown).
func Plan(in Input) Result {
	p := planner{in: in, rules: prepareRules(in.Rules), heldBy: heldBy(in.Held)}
	var res Result
	inScope := make(map[string]bool, len(in.Users))
	seen := make(map[string]bool, len(in.Users))
	outNames := map[string]string{} // externalId -> userName of out-of-scope directory users
	var candidates []candidate
	dup := 0

	for _, u := range in.Users {
		if u.ExternalID != "" && seen[u.ExternalID] {
			dup++
			continue
		}
		seen[u.ExternalID] = true
		a, ok := p.resolve(u)
		if !ok {
			outNames[u.ExternalID] = u.UserName
			continue
		}
		res.InScope++
		inScope[u.ExternalID] = true
		if p.in.Retry != nil && !p.retrying(u.ExternalID, u.UserName) {
			continue
		}
		c, unchanged := p.planUser(u, a)
		if unchanged {
			res.Unchanged++
			continue
		}
		if c.item.Action == Fail || len(c.item.NewSeats) == 0 {
			res.Items = append(res.Items, c.item)
			continue
		}
		candidates = append(candidates, c)
	}
	res.InScope += in.Settled
	res.Unchanged += in.Settled
	if dup > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("directory read listed %d users twice (same externalId): later copies ignored", dup))
	}
	res.Items = append(res.Items, p.allocateSeats(candidates)...)

	if warning := p.suspiciousRead(res.InScope); warning != "" {
		res.Warnings = append(res.Warnings, warning)
	} else {
		suspensions, resolved := p.outOfScope(inScope, outNames)
		res.Resolved = resolved
		if len(suspensions) > 0 {
			if held, msg := p.holdSuspensions(len(suspensions)); held {
				for i := range suspensions {
					suspensions[i].Action = Fail
					suspensions[i].Failure = &Failure{Type: SuspensionHeld, Message: msg}
					suspensions[i].Changed, suspensions[i].ReleaseSeats = nil, nil
				}
				res.SuspensionsHeld = true
				res.Warnings = append(res.Warnings, msg)
			}
			res.Items = append(res.Items, suspensions...)
		}
	}

	sortItems(res.Items)
	return res
}

type planner struct {
	in     Input
	rules  []rules.Rule
	heldBy map[string][]string // externalId -> sorted products it holds a seat of
}

type candidate struct {
	item     Item
	priority int // best rule priority over the products needing a new seat
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

func heldBy(held map[string]map[string]bool) map[string][]string {
	out := map[string][]string{}
	for product, holders := range held {
		for id, ok := range holders {
			if ok {
				out[id] = append(out[id], product)
			}
		}
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// resolve returns the assignment of an enabled user matched by a rule.
func (p *planner) resolve(u directory.User) (rules.Assignment, bool) {
	if u.Disabled {
		return rules.Assignment{}, false
	}
	groups := make([]string, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = rules.NormalizeDN(g) // cheap insurance: a mismatch here would suspend
	}
	return rules.Resolve(p.rules, groups)
}

// planUser plans one in-scope user; unchanged reports that there is nothing to do.
func (p *planner) planUser(u directory.User, a rules.Assignment) (c candidate, unchanged bool) {
	d := Build(u, a, p.in.Mappings)
	item := Item{ExternalID: u.ExternalID, UserName: u.UserName, Desired: d}
	if f := CheckUser(d, p.in.ValidatedDomains); f != nil {
		item.Action, item.Failure = Fail, f
		return candidate{item: item}, false
	}
	held := p.heldBy[u.ExternalID]
	priority := math.MaxInt
	for _, prod := range d.Products {
		if !slices.Contains(held, prod) {
			item.NewSeats = append(item.NewSeats, prod)
			if pr, ok := a.ProductPriority[prod]; ok && pr < priority {
				priority = pr
			}
		}
	}
	for _, prod := range held {
		if !slices.Contains(d.Products, prod) {
			item.ReleaseSeats = append(item.ReleaseSeats, prod)
		}
	}
	_, failed := p.in.Failed[u.ExternalID]
	applied, linked := p.in.Applied[u.ExternalID]
	if !linked {
		item.Action = Create
		return candidate{item: item, priority: priority}, false
	}
	item.Action = Update
	item.Changed = Diff(applied.State, d)
	// Seat bookkeeping that disagrees with the applied state is repaired by an Update too.
	if len(item.Changed) == 0 && !failed && len(item.NewSeats) == 0 && len(item.ReleaseSeats) == 0 {
		return candidate{}, true
	}
	return candidate{item: item, priority: priority}, false
}

// allocateSeats serves the users who need new seats in a deterministic order (best rule
// priority among the products they need, then lower-case userName, then externalId).
// All or nothing per user: one short product fails the user, who then takes no seat.
func (p *planner) allocateSeats(cs []candidate) []Item {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].priority != cs[j].priority {
			return cs[i].priority < cs[j].priority
		}
		return itemLess(cs[i].item, cs[j].item)
	})
	free := map[string]int{}
	for prod, n := range p.in.Seats {
		free[prod] = n - len(p.in.Held[prod])
	}
	for prod, holders := range p.in.Held {
		if _, ok := p.in.Seats[prod]; !ok {
			free[prod] = -len(holders)
		}
	}
	items := make([]Item, 0, len(cs))
	for _, c := range cs {
		item := c.item
		short := ""
		for _, prod := range item.NewSeats { // sorted: the first short product is reported
			if free[prod] <= 0 {
				short = prod
				break
			}
		}
		if short == "" {
			for _, prod := range item.NewSeats {
				free[prod]--
			}
			items = append(items, item)
			continue
		}
		seats := p.in.Seats[short]
		msg := fmt.Sprintf("no free seat for product %q (%d seats, all assigned)", short, seats)
		if seats <= 0 {
			msg = fmt.Sprintf("no free seat for product %q (no seats configured)", short)
		}
		item.Action, item.Failure = Fail, &Failure{Type: OutOfLicenses, Product: short, Message: msg}
		item.Changed, item.NewSeats, item.ReleaseSeats = nil, nil, nil
		items = append(items, item)
	}
	return items
}

// suspiciousRead explains why this directory read must not suspend anyone, or "".
func (p *planner) suspiciousRead(inScope int) string {
	if len(p.in.Users)+p.in.Settled == 0 {
		return "directory read returned 0 users: no suspensions, no failures cleared"
	}
	if prev := p.in.PreviousSnapshotSize; prev > 0 && inScope*2 < prev {
		return fmt.Sprintf("directory read is suspiciously small: %d users in scope, last good read had %d: no suspensions, no failures cleared", inScope, prev)
	}
	return ""
}

// outOfScope plans the suspension of linked active users who left the scope, and lists
// failed users whose failure no longer matters.
func (p *planner) outOfScope(inScope map[string]bool, names map[string]string) ([]Item, []string) {
	var items []Item
	var resolved []string
	for id, ap := range p.in.Applied {
		if inScope[id] {
			continue
		}
		if p.in.Retry != nil && !p.retrying(id, ap.State.UserName) {
			continue
		}
		if !ap.State.Active {
			if _, failed := p.in.Failed[id]; failed {
				resolved = append(resolved, id)
			}
			continue
		}
		d := ap.State
		d.Active = false
		d.Role, d.UserGroup, d.SettingsTemplate = "", "", ""
		d.Products, d.DeviceGroups = nil, nil
		items = append(items, Item{
			ExternalID: id, UserName: ap.State.UserName, Action: Suspend, Desired: d,
			Changed: Diff(ap.State, d), ReleaseSeats: slices.Clone(p.heldBy[id]),
		})
	}
	for id := range p.in.Failed {
		if _, linked := p.in.Applied[id]; linked || inScope[id] {
			continue
		}
		if p.in.Retry != nil && !p.retrying(id, names[id]) {
			continue
		}
		resolved = append(resolved, id)
	}
	slices.Sort(resolved)
	return items, resolved
}

// holdSuspensions applies the threshold: more than SuspendThresholdMax, or more than
// SuspendThresholdPercent of the active linked users (at least 1 always allowed).
func (p *planner) holdSuspensions(n int) (bool, string) {
	pct, max := p.in.SuspendThresholdPercent, p.in.SuspendThresholdMax
	if pct <= 0 {
		pct = DefaultSuspendThresholdPercent
	}
	if max <= 0 {
		max = DefaultSuspendThresholdMax
	}
	active := p.in.Settled // settled users are linked and active
	for _, ap := range p.in.Applied {
		if ap.State.Active {
			active++
		}
	}
	allowed := min(max, active*pct/100)
	if allowed < 1 {
		allowed = 1
	}
	if n <= allowed || p.in.ApproveSuspensions {
		return false, ""
	}
	return true, fmt.Sprintf("suspension held: this sync would suspend %d of %d active linked users, above the safety threshold of %d (%d%%, at most %d); approve the suspensions or fix the directory or rules",
		n, active, allowed, pct, max)
}

// retrying reports whether a retry filter selects this user: it must have a current
// failure that matches every set field of the filter.
func (p *planner) retrying(externalID, userName string) bool {
	f, ok := p.in.Failed[externalID]
	if !ok {
		return false
	}
	r := p.in.Retry
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
	la, lb := strings.ToLower(a.UserName), strings.ToLower(b.UserName)
	if la != lb {
		return la < lb
	}
	return a.ExternalID < b.ExternalID
}

func sortItems(items []Item) {
	sort.SliceStable(items, func(i, j int) bool { return itemLess(items[i], items[j]) })
}
