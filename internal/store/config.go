package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/vocab"
)

// Rules returns the organization's rules in priority order.
func (s *Store) Rules(ctx context.Context, org string) ([]rules.Rule, error) {
	return readRules(ctx, s.pool, org)
}

func readRules(ctx context.Context, db dbtx, org string) ([]rules.Rule, error) {
	rows, err := db.Query(ctx, `SELECT id, priority, group_dn, role, products, user_group, device_groups,
		settings_template, custom_fields, note FROM rules WHERE org=$1 ORDER BY priority`, org)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	defer rows.Close()
	var out []rules.Rule
	for rows.Next() {
		var r rules.Rule
		if err := rows.Scan(&r.ID, &r.Priority, &r.GroupDN, &r.Role, &r.Products, &r.UserGroup, &r.DeviceGroups,
			&r.SettingsTemplate, &r.CustomFields, &r.Note); err != nil {
			return nil, err
		}
		// Empty values read back as nil, as they were written: a rule round-trips unchanged.
		if len(r.CustomFields) == 0 {
			r.CustomFields = nil
		}
		if len(r.Products) == 0 {
			r.Products = nil
		}
		if len(r.DeviceGroups) == 0 {
			r.DeviceGroups = nil
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// EditRules changes the rule list atomically: edit receives the current list (priority order)
// and returns the new full list, which must be dense (1..n). A rule with ID 0 gets a new ID.
// The change and a history event are written in one transaction; concurrent edits serialize.
func (s *Store) EditRules(ctx context.Context, org, actor, action string, edit func([]rules.Rule) ([]rules.Rule, error)) ([]rules.Rule, error) {
	var result []rules.Rule
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('rules/' || $1))`, org); err != nil {
			return err
		}
		current, err := readRules(ctx, tx, org)
		if err != nil {
			return err
		}
		next, err := edit(current)
		if err != nil {
			return err
		}
		if err := rules.CheckDense(next); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM rules WHERE org=$1`, org); err != nil {
			return err
		}
		existing := map[int64]bool{}
		for _, r := range current {
			existing[r.ID] = true
		}
		for i := range next {
			r := &next[i]
			if !existing[r.ID] { // new rule: IDs come from the sequence only
				if err := tx.QueryRow(ctx, `SELECT nextval('rule_ids')`).Scan(&r.ID); err != nil {
					return err
				}
			}
			custom := r.CustomFields
			if custom == nil {
				custom = map[string]string{}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO rules (org, id, priority, group_dn, role, products, user_group,
				device_groups, settings_template, custom_fields, note) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
				org, r.ID, r.Priority, r.GroupDN, r.Role, nonNil(r.Products), r.UserGroup, nonNil(r.DeviceGroups),
				r.SettingsTemplate, custom, r.Note); err != nil {
				return fmt.Errorf("save rule %d: %w", r.ID, err)
			}
		}
		result = next
		ms, err := readMappings(ctx, tx, org)
		if err != nil {
			return err
		}
		if err := fitsTarget(ctx, tx, org, nil, current, ms); err != nil {
			return err
		}
		return addEvent(ctx, tx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventRule, Action: action,
			Details: map[string]any{"rules": summarizeRules(next)}})
	})
	return result, err
}

func summarizeRules(rs []rules.Rule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%d:#%d %s", r.Priority, r.ID, r.GroupDN)
	}
	return out
}

// Mappings returns the attribute mappings.
func (s *Store) Mappings(ctx context.Context, org string) ([]plan.Mapping, error) {
	return readMappings(ctx, s.pool, org)
}

func readMappings(ctx context.Context, db dbtx, org string) ([]plan.Mapping, error) {
	rows, err := db.Query(ctx, `SELECT source, target FROM mappings WHERE org=$1 ORDER BY target`, org)
	if err != nil {
		return nil, fmt.Errorf("read mappings: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (plan.Mapping, error) {
		var m plan.Mapping
		return m, r.Scan(&m.Source, &m.Target)
	})
}

// SetMapping maps a directory attribute to a target attribute; an empty source removes it.
func (s *Store) SetMapping(ctx context.Context, org, actor, source, target string) error {
	return s.change(ctx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventMapping, Action: "set",
		Details: map[string]any{"source": source, "target": target}}, func(tx pgx.Tx) error {
		if source == "" {
			tag, err := tx.Exec(ctx, `DELETE FROM mappings WHERE org=$1 AND target=$2`, org, target)
			if err == nil && tag.RowsAffected() == 0 {
				return fmt.Errorf("mapping target %q: %w", target, ErrNotFound)
			}
			return err
		}
		before, err := readMappings(ctx, tx, org)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mappings (org, source, target) VALUES ($1,$2,$3)
			ON CONFLICT (org, target) DO UPDATE SET source=EXCLUDED.source`, org, source, target); err != nil {
			return err
		}
		rs, err := readRules(ctx, tx, org)
		if err != nil {
			return err
		}
		return fitsTarget(ctx, tx, org, nil, rs, before)
	})
}

// Catalog returns what the target knows.
func (s *Store) Catalog(ctx context.Context, org string) (rules.Catalog, error) {
	var c rules.Catalog
	rows, err := s.pool.Query(ctx, `SELECT kind, name FROM catalog WHERE org=$1 ORDER BY kind, name`, org)
	if err != nil {
		return c, fmt.Errorf("read catalog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, name string
		if err := rows.Scan(&kind, &name); err != nil {
			return c, err
		}
		switch kind {
		case "product":
			c.Products = append(c.Products, name)
		case "role":
			c.Roles = append(c.Roles, name)
		case "template":
			c.Templates = append(c.Templates, name)
		}
	}
	return c, rows.Err()
}

// SetCatalog replaces the catalog.
func (s *Store) SetCatalog(ctx context.Context, org, actor string, c rules.Catalog) error {
	return s.change(ctx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventSetting, Action: "catalog",
		Details: map[string]any{"products": c.Products, "roles": c.Roles, "templates": c.Templates}}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM catalog WHERE org=$1`, org); err != nil {
			return err
		}
		for kind, names := range map[string][]string{"product": c.Products, "role": c.Roles, "template": c.Templates} {
			for _, n := range names {
				if _, err := tx.Exec(ctx, `INSERT INTO catalog (org, kind, name) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING`, org, kind, n); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Domain is an email domain of the organization.
type Domain struct {
	Name      string `json:"name"`
	Validated bool   `json:"validated"`
}

// Domains lists the organization's domains.
func (s *Store) Domains(ctx context.Context, org string) ([]Domain, error) {
	rows, err := s.pool.Query(ctx, `SELECT domain, validated FROM domains WHERE org=$1 ORDER BY domain`, org)
	if err != nil {
		return nil, fmt.Errorf("read domains: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Domain, error) {
		var d Domain
		return d, r.Scan(&d.Name, &d.Validated)
	})
}

// SetDomain records whether a domain is validated.
func (s *Store) SetDomain(ctx context.Context, org, actor, domain string, validated bool) error {
	domain = strings.ToLower(strings.TrimSpace(domain))
	return s.change(ctx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventDomain, Action: "set",
		Details: map[string]any{"domain": domain, "validated": validated}}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO domains (org, domain, validated) VALUES ($1,$2,$3)
			ON CONFLICT (org, domain) DO UPDATE SET validated=EXCLUDED.validated`, org, domain, validated)
		return err
	})
}
