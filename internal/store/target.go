package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/vocab"
)

// Settings keys of the target's custom extension (spec 4: the URN and its attribute names are
// per-organization settings).
const (
	SettingCustomSchema      = "target.customSchema"
	SettingTemplateAttribute = "target.templateAttribute"
)

// TargetExtension returns the organization's configured custom extension (defaults filled in).
func (s *Store) TargetExtension(ctx context.Context, org string) (scim.Extension, error) {
	return readExtension(ctx, s.pool, org)
}

func readExtension(ctx context.Context, db dbtx, org string) (scim.Extension, error) {
	var e scim.Extension
	rows, err := db.Query(ctx, `SELECT key, value FROM settings WHERE org=$1 AND key = ANY($2)`,
		org, []string{SettingCustomSchema, SettingTemplateAttribute})
	if err != nil {
		return e, fmt.Errorf("read target settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return e, err
		}
		switch k {
		case SettingCustomSchema:
			e.URN = v
		case SettingTemplateAttribute:
			e.TemplateAttribute = v
		}
	}
	return e.Resolved(), rows.Err()
}

// SetTargetExtension validates and saves the custom extension settings (empty fields: back to
// the default) with one history row.
func (s *Store) SetTargetExtension(ctx context.Context, org, actor string, e scim.Extension) error {
	if err := e.Validate(); err != nil {
		return err
	}
	r := e.Resolved()
	return s.change(ctx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventSetting, Action: "target extension set",
		Details: map[string]any{"customSchema": r.URN, "templateAttribute": r.TemplateAttribute}}, func(tx pgx.Tx) error {
		if err := fitsTarget(ctx, tx, org, &r, nil, nil); err != nil {
			return err
		}
		if old, err := readExtension(ctx, tx, org); err != nil {
			return err
		} else if old != r {
			if err := forgetExtensionValues(ctx, tx, org); err != nil {
				return err
			}
		}
		for k, v := range map[string]string{SettingCustomSchema: e.URN, SettingTemplateAttribute: e.TemplateAttribute} {
			var err error
			if v == "" {
				_, err = tx.Exec(ctx, `DELETE FROM settings WHERE org=$1 AND key=$2`, org, k)
			} else {
				_, err = tx.Exec(ctx, `INSERT INTO settings (org, key, value) VALUES ($1,$2,$3)
					ON CONFLICT (org, key) DO UPDATE SET value=EXCLUDED.value`, org, k, v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// forgetExtensionValues drops custom fields and templates from the applied states: under a new
// URN or attribute the target holds none of them, so the next sync writes them all again.
// (A rare admin action: the organization's states are read once, in Go.)
func forgetExtensionValues(ctx context.Context, tx pgx.Tx, org string) error {
	rows, err := tx.Query(ctx, `SELECT external_id, state FROM user_state WHERE org=$1`, org)
	if err != nil {
		return err
	}
	var ids, states, hashes []string
	for rows.Next() {
		var id string
		var d plan.Desired
		if err := rows.Scan(&id, &d); err != nil {
			rows.Close()
			return err
		}
		if d.Custom == nil && d.SettingsTemplate == "" {
			continue
		}
		d.Custom, d.SettingsTemplate = nil, ""
		b, err := json.Marshal(d)
		if err != nil {
			rows.Close()
			return err
		}
		ids, states, hashes = append(ids, id), append(states, string(b)), append(hashes, d.Hash())
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE user_state u SET state=x.state::jsonb, hash=x.hash
		FROM unnest($2::text[], $3::text[], $4::text[]) AS x(id, state, hash)
		WHERE u.org=$1 AND u.external_id=x.id`, org, ids, states, hashes)
	return err
}

// TargetProfile is what a run found the target to be, and the extension it writes.
type TargetProfile struct {
	Extension    scim.Extension  `json:"extension"`
	Discovery    *scim.Discovery `json:"discovery"`
	RunID        string          `json:"runId"`
	DiscoveredAt time.Time       `json:"discoveredAt"`
}

// SaveTargetProfile records a run's discovery of the target.
func (s *Store) SaveTargetProfile(ctx context.Context, org, runID string, e scim.Extension, d *scim.Discovery) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO target_profiles (org, extension, discovery, run_id) VALUES ($1,$2,$3,$4)
		ON CONFLICT (org) DO UPDATE SET extension=EXCLUDED.extension, discovery=EXCLUDED.discovery,
		run_id=EXCLUDED.run_id, discovered_at=now()`, org, e, d, runID)
	if err != nil {
		return fmt.Errorf("save target profile: %w", err)
	}
	return nil
}

// SetRunExtension fixes the custom extension a run writes.
func (s *Store) SetRunExtension(ctx context.Context, runID string, e scim.Extension) error {
	tag, err := s.pool.Exec(ctx, `UPDATE runs SET extension=$2 WHERE run_id=$1`, runID, e)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("save the run's extension: %w", err)
	}
	return nil
}

// TargetProfile returns the last discovery of the organization's target, nil when none.
func (s *Store) TargetProfile(ctx context.Context, org string) (*TargetProfile, error) {
	return readTargetProfile(ctx, s.pool, org)
}

func readTargetProfile(ctx context.Context, db dbtx, org string) (*TargetProfile, error) {
	var p TargetProfile
	var ext, disc []byte
	err := db.QueryRow(ctx, `SELECT extension, discovery, run_id, discovered_at FROM target_profiles WHERE org=$1`, org).
		Scan(&ext, &disc, &p.RunID, &p.DiscoveredAt)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read target profile: %w", err)
	}
	if err := json.Unmarshal(ext, &p.Extension); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(disc, &p.Discovery); err != nil {
		return nil, err
	}
	return &p, nil
}

// fitsTarget refuses a configuration change that would write a custom or enterprise attribute
// the target's schema does not declare, as the organization's last discovery found it (spec
// 7: refused when saved, naming the attribute). It runs inside the change's transaction,
// after the change: only what the change newly writes is checked (an older mismatch is the
// run's to report), all of it when the extension itself changed (ext != nil). Without a
// discovery yet, the first run checks.
func fitsTarget(ctx context.Context, tx pgx.Tx, org string, ext *scim.Extension, oldRules []rules.Rule, oldMappings []plan.Mapping) error {
	rs, err := readRules(ctx, tx, org)
	if err != nil {
		return err
	}
	ms, err := readMappings(ctx, tx, org)
	if err != nil {
		return err
	}
	custom, template, enterprise := plan.ExtensionUse(rs, ms)
	if ext == nil {
		e, err := readExtension(ctx, tx, org)
		if err != nil {
			return err
		}
		ext = &e
		oldCustom, oldTemplate, oldEnterprise := plan.ExtensionUse(oldRules, oldMappings)
		custom, enterprise = without(custom, oldCustom), without(enterprise, oldEnterprise)
		template = template && !oldTemplate
	}
	for _, c := range custom {
		if !scim.ValidAttributeName(c) {
			return fmt.Errorf("custom field %q: not a SCIM attribute name (a letter, then letters, digits, '-' or '_')", c)
		}
		if strings.EqualFold(c, ext.TemplateAttribute) {
			return fmt.Errorf("custom field %q: the settings template is written there (starter target set --template-attribute)", c)
		}
	}
	if len(custom) == 0 && !template && len(enterprise) == 0 {
		return nil
	}
	p, err := readTargetProfile(ctx, tx, org)
	if err != nil || p == nil || p.Discovery == nil {
		return err
	}
	if err := p.Discovery.Check(*ext, custom, template, enterprise); err != nil {
		return fmt.Errorf("refused: %w (as found by run %s)", err, p.RunID)
	}
	return nil
}

func without(list, drop []string) []string {
	var out []string
	for _, x := range list {
		if !slices.Contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}
