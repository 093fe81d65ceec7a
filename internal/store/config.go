package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/vocab"
)

// Rules returns the organization's rules in priority order.
func (s *Store) Rules(ctx context.Context, org string) ([]rules.Rule, error) {
	return readRules(ctx, s.pool, org)
}

func readRules(ctx context.Context, db dbtx, org string) ([]rules.Rule, error) {
	rows, err := db.Query(ctx, `SELECT id, priority, group_dn, group_id, role, products, user_group, device_groups,
		settings_template, custom_fields, note FROM rules WHERE org=$1 ORDER BY priority`, org)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	defer rows.Close()
	var out []rules.Rule
	for rows.Next() {
		var r rules.Rule
		if err := rows.Scan(&r.ID, &r.Priority, &r.GroupDN, &r.GroupID, &r.Role, &r.Products, &r.UserGroup, &r.DeviceGroups,
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
		// Before edit: it may change the rules of current in place.
		existing := map[int64]rules.Rule{}
		for _, r := range current {
			existing[r.ID] = r
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
		for i := range next {
			r := &next[i]
			old, ok := existing[r.ID]
			if !ok { // new rule: IDs come from the sequence only
				if err := tx.QueryRow(ctx, `SELECT nextval('rule_ids')`).Scan(&r.ID); err != nil {
					return err
				}
			}
			if ok && r.GroupDN != old.GroupDN && r.GroupID == old.GroupID {
				// The rule now names another group: the old group's ID would take it back
				// to the old group at the next sync. The next sync finds the new one by DN.
				r.GroupID = ""
			}
			custom := r.CustomFields
			if custom == nil {
				custom = map[string]string{}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO rules (org, id, priority, group_dn, group_id, role, products, user_group,
				device_groups, settings_template, custom_fields, note) VALUES ($1,$2,$3,$4,$12,$5,$6,$7,$8,$9,$10,$11)`,
				org, r.ID, r.Priority, r.GroupDN, r.Role, nonNil(r.Products), r.UserGroup, nonNil(r.DeviceGroups),
				r.SettingsTemplate, custom, r.Note, r.GroupID); err != nil {
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

// RuleGroupMove is where a directory read found a ruled group: From is the DN and ID the
// rules hold, To the group's DN and ID now.
type RuleGroupMove struct {
	From, To directory.GroupRef
}

// RefreshRuleGroups records where the ruled groups are now: every rule holding a move's
// From (DN and ID as stored) takes its To, so that rules show the group's current DN and
// keep its ID. A rule edited since the read (another DN or ID) is left as it is. A DN
// change is written to the history (the ID found alone is not news). It returns the
// rules after.
func (s *Store) RefreshRuleGroups(ctx context.Context, org string, moves []RuleGroupMove) ([]rules.Rule, error) {
	var result []rules.Rule
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('rules/' || $1))`, org); err != nil {
			return err
		}
		for _, m := range moves {
			if m.From == m.To {
				continue
			}
			tag, err := tx.Exec(ctx, `UPDATE rules SET group_dn=$4, group_id=$5 WHERE org=$1 AND group_dn=$2 AND group_id=$3`,
				org, m.From.DN, m.From.ID, m.To.DN, m.To.ID)
			if err != nil {
				return fmt.Errorf("refresh rule groups: %w", err)
			}
			if tag.RowsAffected() > 0 && !sameDN(m.From.DN, m.To.DN) {
				if err := addEvent(ctx, tx, vocab.Event{Org: org, Type: vocab.EventRule, Action: "group moved",
					Details: map[string]any{"from": m.From.DN, "to": m.To.DN, "groupId": m.To.ID, "rules": tag.RowsAffected()}}); err != nil {
					return err
				}
			}
		}
		var err error
		result, err = readRules(ctx, tx, org)
		return err
	})
	return result, err
}

// sameDN reports whether a and b name one entry (another spelling is no move).
func sameDN(a, b string) bool {
	pa, errA := ldap.ParseDN(a)
	pb, errB := ldap.ParseDN(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return pa.EqualFold(pb)
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

// DeleteDomain forgets a domain (its users then fail domain_not_validated, as unvalidated).
func (s *Store) DeleteDomain(ctx context.Context, org, actor, domain string) error {
	domain = strings.ToLower(strings.TrimSpace(domain))
	return s.change(ctx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventDomain, Action: "remove",
		Details: map[string]any{"domain": domain}}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM domains WHERE org=$1 AND domain=$2`, org, domain)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("domain %q: %w", domain, ErrNotFound)
		}
		return err
	})
}
