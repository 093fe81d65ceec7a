package rules

import (
	"slices"
	"sort"
)

// Source keys of Assignment.Sources for the single-valued fields; custom fields use
// CustomSource(name).
const (
	SourceRole             = "role"
	SourceUserGroup        = "userGroup"
	SourceSettingsTemplate = "settingsTemplate"
)

// CustomSource is the Assignment.Sources key of one custom field.
func CustomSource(name string) string { return "custom:" + name }

// Resolve computes what a user in the given groups gets. groups and the rules' GroupDN
// must both be normalized with NormalizeDN. rs may come in any order; they are applied by
// Priority (ties by ID). It returns false, and a zero Assignment, when no rule matches.
//
// Single-valued fields take the value of the highest-priority matching rule that sets
// them: an empty value never overrides a lower rule's value. Products and device groups
// are the sorted union over all matching rules.
func Resolve(rs []Rule, groups []string) (Assignment, bool) {
	ordered := rs
	if !sort.SliceIsSorted(rs, func(i, j int) bool { return ruleLess(rs[i], rs[j]) }) {
		ordered = slices.Clone(rs)
		sortRules(ordered)
	}

	var a Assignment
	var products, devices []string
	for _, r := range ordered {
		if !slices.Contains(groups, r.GroupDN) {
			continue
		}
		a.MatchedRules = append(a.MatchedRules, r.ID)
		setOnce(&a.Role, r.Role, &a.Sources, SourceRole, r.ID)
		setOnce(&a.UserGroup, r.UserGroup, &a.Sources, SourceUserGroup, r.ID)
		setOnce(&a.SettingsTemplate, r.SettingsTemplate, &a.Sources, SourceSettingsTemplate, r.ID)
		for name, v := range r.CustomFields {
			if name == "" || v == "" {
				continue
			}
			if _, taken := a.CustomFields[name]; taken {
				continue
			}
			if a.CustomFields == nil {
				a.CustomFields = map[string]string{}
			}
			a.CustomFields[name] = v
			setSource(&a.Sources, CustomSource(name), r.ID)
		}
		for _, p := range r.Products {
			if p == "" {
				continue
			}
			products = append(products, p)
			if _, seen := a.ProductPriority[p]; !seen {
				// Rules come in priority order, so the first grant is the best one.
				if a.ProductPriority == nil {
					a.ProductPriority = map[string]int{}
				}
				a.ProductPriority[p] = r.Priority
			}
		}
		for _, d := range r.DeviceGroups {
			if d != "" {
				devices = append(devices, d)
			}
		}
	}
	if len(a.MatchedRules) == 0 {
		return Assignment{}, false
	}
	a.Products = sortedUnique(products)
	a.DeviceGroups = sortedUnique(devices)
	return a, true
}

func setOnce(field *string, v string, sources *map[string]int64, key string, id int64) {
	if *field != "" || v == "" {
		return
	}
	*field = v
	setSource(sources, key, id)
}

func setSource(sources *map[string]int64, key string, id int64) {
	if *sources == nil {
		*sources = map[string]int64{}
	}
	(*sources)[key] = id
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

func ruleLess(a, b Rule) bool {
	if a.Priority != b.Priority {
		return a.Priority < b.Priority
	}
	return a.ID < b.ID
}

func sortRules(rs []Rule) {
	sort.SliceStable(rs, func(i, j int) bool { return ruleLess(rs[i], rs[j]) })
}
