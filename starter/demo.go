package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/store"
)

func seedDemoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "seed-demo",
		Short: "Load the demo organization's configuration into the database (idempotent)",
		Long: `seed-demo makes the store hold the demo organization's catalog, rules, seats, domains and
attribute mappings (internal/demo). What already matches is left alone, so running it twice
changes nothing the second time. The directory content is loaded by the dev stack, not here.`,
		Example: `  starter seed-demo
  starter --org acme seed-demo --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			done, err := seedDemo(ctx, db, a.Org, a.actor, demo.Org())
			if err != nil {
				return err
			}
			return a.emit(cmd, map[string]any{"org": a.Org, "changes": done}, func(w io.Writer) {
				fmt.Fprintf(w, "Demo configuration of %s:\n", a.Org)
				for _, d := range done {
					fmt.Fprintln(w, "  "+d)
				}
			})
		},
	}
}

// seedDemo brings the store to d's configuration and says, per part, what it did.
func seedDemo(ctx context.Context, db *store.Store, org, actor string, d demo.Demo) ([]string, error) {
	var done []string
	note := func(format string, args ...any) { done = append(done, fmt.Sprintf(format, args...)) }

	cat, err := db.Catalog(ctx, org)
	if err != nil {
		return nil, err
	}
	want := sortedCatalog(d.Catalog)
	if sameCatalog(cat, want) {
		note("catalog: unchanged")
	} else {
		if err := db.SetCatalog(ctx, org, actor, want); err != nil {
			return nil, err
		}
		note("catalog: set (%d products, %d roles, %d templates)", len(want.Products), len(want.Roles), len(want.Templates))
	}

	current, err := db.Rules(ctx, org)
	if err != nil {
		return nil, err
	}
	if sameRules(current, d.Rules) {
		note("rules: unchanged (%d)", len(current))
	} else {
		next := make([]rules.Rule, len(d.Rules))
		for i, r := range d.Rules {
			r.ID = 0 // the store numbers rules; demo IDs would collide with its sequence
			r.GroupDN = rules.NormalizeDN(r.GroupDN)
			next[i] = r
		}
		if _, err := db.EditRules(ctx, org, actor, "seed-demo: replace rules", func([]rules.Rule) ([]rules.Rule, error) {
			return next, nil
		}); err != nil {
			return nil, err
		}
		note("rules: replaced %d with the %d demo rules", len(current), len(next))
	}

	licenses, err := db.Licenses(ctx, org)
	if err != nil {
		return nil, err
	}
	seats := map[string]int{}
	for _, l := range licenses {
		seats[l.Product] = l.Seats
	}
	for _, p := range slices.Sorted(maps.Keys(d.Seats)) {
		if n, ok := seats[p]; ok && n == d.Seats[p] {
			note("seats %s: unchanged (%d)", p, n)
			continue
		}
		if err := db.SetLicense(ctx, org, actor, p, d.Seats[p]); err != nil {
			return nil, err
		}
		note("seats %s: set to %d", p, d.Seats[p])
	}

	domains, err := db.Domains(ctx, org)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{} // domain -> validated
	present := map[string]bool{}
	for _, dom := range domains {
		known[dom.Name], present[dom.Name] = dom.Validated, true
	}
	wantDomains := map[string]bool{demo.PartnerDomain: false}
	for _, v := range d.ValidatedDomains {
		wantDomains[v] = true
	}
	for _, name := range slices.Sorted(maps.Keys(wantDomains)) {
		validated := wantDomains[name]
		if present[name] && known[name] == validated {
			note("domain %s: unchanged (validated=%t)", name, validated)
			continue
		}
		if err := db.SetDomain(ctx, org, actor, name, validated); err != nil {
			return nil, err
		}
		note("domain %s: set validated=%t", name, validated)
	}

	mappings, err := db.Mappings(ctx, org)
	if err != nil {
		return nil, err
	}
	sources := map[string]string{}
	for _, m := range mappings {
		sources[m.Target] = m.Source
	}
	wantMappings := slices.Clone(d.Mappings)
	sort.Slice(wantMappings, func(i, j int) bool { return wantMappings[i].Target < wantMappings[j].Target })
	for _, m := range wantMappings {
		if sources[m.Target] == m.Source {
			note("mapping %s -> %s: unchanged", m.Source, m.Target)
			continue
		}
		if err := db.SetMapping(ctx, org, actor, m.Source, m.Target); err != nil {
			return nil, err
		}
		note("mapping %s -> %s: set", m.Source, m.Target)
	}
	return done, nil
}

func sortedCatalog(c rules.Catalog) rules.Catalog {
	return rules.Catalog{Products: sortedCopy(c.Products), Roles: sortedCopy(c.Roles), Templates: sortedCopy(c.Templates)}
}

func sortedCopy(vs []string) []string {
	out := slices.Clone(vs)
	slices.Sort(out)
	return out
}

// sameCatalog compares as sets (the store returns names sorted).
func sameCatalog(a, b rules.Catalog) bool {
	a = sortedCatalog(a)
	return slices.Equal(a.Products, b.Products) && slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Templates, b.Templates)
}

// sameRules compares everything but the IDs, which the store assigns.
func sameRules(have, want []rules.Rule) bool {
	return slices.EqualFunc(have, want, func(x, y rules.Rule) bool {
		return x.Priority == y.Priority && x.GroupDN == rules.NormalizeDN(y.GroupDN) && x.Role == y.Role &&
			slices.Equal(x.Products, y.Products) && x.UserGroup == y.UserGroup &&
			slices.Equal(x.DeviceGroups, y.DeviceGroups) && x.SettingsTemplate == y.SettingsTemplate &&
			maps.Equal(x.CustomFields, y.CustomFields) && x.Note == y.Note
	})
}
