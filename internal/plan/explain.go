package plan

import (
	"slices"
	"strings"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/vocab"
)

// Explanation tells an admin why one user gets what it gets (spec section 10, "explain").
type Explanation struct {
	ExternalID string   `json:"externalId"`
	UserName   string   `json:"userName"`
	Disabled   bool     `json:"disabled,omitempty"`
	Groups     []string `json:"groups"` // normalized DNs of the ruled groups holding the user
	InScope    bool     `json:"inScope"`
	// OutOfScope says why the user is not in scope ("disabled", "no matching rule").
	OutOfScope   string          `json:"outOfScope,omitempty"`
	MatchedRules []MatchedRule   `json:"matchedRules,omitempty"`
	Fields       []FieldDecision `json:"fields,omitempty"`
	License      LicenseDecision `json:"license"`
	Linked       bool            `json:"linked"`
	// Action is what this sync would do; empty when there is nothing to do.
	Action   Action         `json:"action,omitempty"`
	Changed  []string       `json:"changed,omitempty"` // fields that differ from the applied state
	Desired  *Desired       `json:"desired,omitempty"`
	Failure  *vocab.Failure `json:"failure,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
}

// MatchedRule is one rule whose group holds the user, in priority order.
type MatchedRule struct {
	ID       int64  `json:"id"`
	Priority int    `json:"priority"`
	GroupDN  string `json:"groupDn"`
	Note     string `json:"note,omitempty"`
}

// FieldDecision says where one assigned value came from: a rule or a mapped attribute.
type FieldDecision struct {
	Field     string `json:"field"` // "role", "products", "custom:<name>", "enterprise:<name>", ...
	Value     string `json:"value"`
	RuleID    int64  `json:"ruleId,omitempty"`
	Priority  int    `json:"priority,omitempty"`
	Attribute string `json:"attribute,omitempty"` // directory attribute, for mapped fields
}

// LicenseDecision is the seat outcome for the user in this sync.
type LicenseDecision struct {
	Held         []string `json:"held,omitempty"`
	NewSeats     []string `json:"newSeats,omitempty"`
	ReleaseSeats []string `json:"releaseSeats,omitempty"`
	Decision     string   `json:"decision"`
}

// Explain plans the whole sync (seats depend on everyone else) and reports the part that
// concerns u. u replaces the directory user with the same externalId in in.Users, or is
// added. A retry filter in the input is ignored.
func Explain(u directory.User, in Input) Explanation {
	users := slices.Clone(in.Users)
	if i := slices.IndexFunc(users, func(x directory.User) bool { return x.ExternalID == u.ExternalID }); i >= 0 {
		users[i] = u
	} else {
		users = append(users, u)
	}
	in.Users, in.Retry = users, nil
	res := Plan(in)

	p := NewPlanner(in)
	e := Explanation{ExternalID: u.ExternalID, UserName: u.UserName, Disabled: u.Disabled,
		Groups: make([]string, 0, len(u.Groups)), Warnings: res.Warnings}
	for _, g := range u.Groups {
		e.Groups = append(e.Groups, rules.NormalizeDN(g))
	}
	a, matched := rules.Resolve(p.rules, e.Groups)
	switch {
	case u.Disabled:
		e.OutOfScope = "disabled"
	case !matched:
		e.OutOfScope = "no matching rule"
	default:
		e.InScope = true
		e.MatchedRules, e.Fields = p.explainRules(a, u, in.Mappings)
	}

	applied, linked := in.Applied[u.ExternalID]
	e.Linked = linked
	e.License.Held = heldBy(in.Held)[u.ExternalID]
	i := slices.IndexFunc(res.Items, func(it Item) bool { return it.ExternalID == u.ExternalID })
	if i >= 0 {
		it := res.Items[i]
		e.Action, e.Changed, e.Failure = it.Action, it.Changed, it.Failure
		e.Desired = &it.Desired
		e.License.NewSeats, e.License.ReleaseSeats = it.NewSeats, it.ReleaseSeats
	} else if e.InScope {
		d := Build(u, a, in.Mappings)
		e.Desired = &d
		if linked {
			e.Changed = Diff(applied.State, d)
		}
	}
	e.License.Decision = licenseDecision(e)
	return e
}

func (p *Planner) explainRules(a rules.Assignment, u directory.User, ms []Mapping) ([]MatchedRule, []FieldDecision) {
	byID := map[int64]rules.Rule{}
	for _, r := range p.rules {
		byID[r.ID] = r
	}
	var matched []MatchedRule
	for _, id := range a.MatchedRules {
		r := byID[id]
		matched = append(matched, MatchedRule{ID: r.ID, Priority: r.Priority, GroupDN: r.GroupDN, Note: r.Note})
	}
	var fields []FieldDecision
	fromRule := func(field, value, source string) {
		if value == "" {
			return
		}
		id := a.Sources[source]
		fields = append(fields, FieldDecision{Field: field, Value: value, RuleID: id, Priority: byID[id].Priority})
	}
	fromRule("role", a.Role, rules.SourceRole)
	fromRule("userGroup", a.UserGroup, rules.SourceUserGroup)
	fromRule("settingsTemplate", a.SettingsTemplate, rules.SourceSettingsTemplate)
	// Sets: name the best (first in priority order) matching rule granting each value.
	firstGranting := func(field, value string, in func(rules.Rule) []string) {
		for _, id := range a.MatchedRules {
			if slices.Contains(in(byID[id]), value) {
				fields = append(fields, FieldDecision{Field: field, Value: value, RuleID: id, Priority: byID[id].Priority})
				return
			}
		}
	}
	for _, prod := range a.Products {
		firstGranting("products", prod, func(r rules.Rule) []string { return r.Products })
	}
	for _, dg := range a.DeviceGroups {
		firstGranting("deviceGroups", dg, func(r rules.Rule) []string { return r.DeviceGroups })
	}
	d := Build(u, a, ms)
	for _, k := range sortedKeys(d.Custom) {
		if _, fromRuleConst := a.CustomFields[k]; fromRuleConst {
			fromRule(CustomPrefix+k, d.Custom[k], rules.CustomSource(k))
			continue
		}
		fields = append(fields, FieldDecision{Field: CustomPrefix + k, Value: d.Custom[k], Attribute: mappingSource(ms, CustomPrefix+k)})
	}
	for _, k := range sortedKeys(d.Enterprise) {
		fields = append(fields, FieldDecision{Field: EnterprisePrefix + k, Value: d.Enterprise[k], Attribute: mappingSource(ms, EnterprisePrefix+k)})
	}
	return matched, fields
}

// mappingSource names the attribute that supplied a target (the last mapping wins in Build).
func mappingSource(ms []Mapping, target string) string {
	src := ""
	for _, m := range ms {
		if m.Target == target {
			src = m.Source
		}
	}
	return src
}

func licenseDecision(e Explanation) string {
	switch {
	case e.Failure != nil && e.Failure.Type == vocab.OutOfLicenses:
		return e.Failure.Message + "; the user takes no new seat"
	case e.Failure != nil:
		return "not evaluated: " + e.Failure.Type
	case e.Action == Suspend:
		if len(e.License.ReleaseSeats) == 0 {
			return "suspended: holds no seat"
		}
		return "suspended: releases " + strings.Join(e.License.ReleaseSeats, ", ")
	}
	var parts []string
	if len(e.License.NewSeats) > 0 {
		parts = append(parts, "takes a seat of "+strings.Join(e.License.NewSeats, ", "))
	}
	if len(e.License.ReleaseSeats) > 0 {
		parts = append(parts, "releases "+strings.Join(e.License.ReleaseSeats, ", "))
	}
	if len(parts) == 0 {
		if len(e.License.Held) > 0 {
			return "keeps " + strings.Join(e.License.Held, ", ")
		}
		return "no seat needed"
	}
	return strings.Join(parts, "; ")
}
