package demo

import (
	"context"
	"fmt"

	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/store"
)

// Seed writes a demo's configuration (catalog, rules, seats, domains, mappings) into the store.
// It is idempotent: running it twice leaves the same configuration.
func Seed(ctx context.Context, st *store.Store, org, actor string, d Demo) error {
	if err := st.SetCatalog(ctx, org, actor, d.Catalog); err != nil {
		return fmt.Errorf("seed catalog: %w", err)
	}
	if _, err := st.EditRules(ctx, org, actor, "seed demo rules", func(current []rules.Rule) ([]rules.Rule, error) {
		next := make([]rules.Rule, len(d.Rules))
		for i, r := range d.Rules {
			r.ID = 0
			for _, c := range current { // keep the IDs of an earlier seed
				if c.Priority == r.Priority && c.GroupDN == r.GroupDN {
					r.ID = c.ID
				}
			}
			next[i] = r
		}
		return next, nil
	}); err != nil {
		return fmt.Errorf("seed rules: %w", err)
	}
	for p, n := range d.Seats {
		if err := st.SetLicense(ctx, org, actor, p, n); err != nil {
			return fmt.Errorf("seed seats of %s: %w", p, err)
		}
	}
	for _, dom := range d.ValidatedDomains {
		if err := st.SetDomain(ctx, org, actor, dom, true); err != nil {
			return err
		}
	}
	// Known but not validated: its users fail with domain_not_validated until validated.
	if err := st.SetDomain(ctx, org, actor, PartnerDomain, false); err != nil {
		return err
	}
	for _, m := range d.Mappings {
		if err := st.SetMapping(ctx, org, actor, m.Source, m.Target); err != nil {
			return err
		}
	}
	return nil
}
