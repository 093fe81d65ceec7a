package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/scim"
)

// Settings keys of the target's custom extension (spec 4: the URN and its attribute names are
// per-organization settings).
const (
	SettingCustomSchema      = "target.customSchema"
	SettingTemplateAttribute = "target.templateAttribute"
)

// TargetExtension returns the organization's configured custom extension (defaults filled in).
func (s *Store) TargetExtension(ctx context.Context, org string) (scim.Extension, error) {
	var e scim.Extension
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM settings WHERE org=$1 AND key = ANY($2)`,
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
	return s.change(ctx, Event{Org: org, Actor: actor, Type: EventSetting, Action: "target extension set",
		Details: map[string]any{"customSchema": r.URN, "templateAttribute": r.TemplateAttribute}}, func(tx pgx.Tx) error {
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

// TargetProfile returns the last discovery of the organization's target, nil when none.
func (s *Store) TargetProfile(ctx context.Context, org string) (*TargetProfile, error) {
	var p TargetProfile
	var ext, disc []byte
	err := s.pool.QueryRow(ctx, `SELECT extension, discovery, run_id, discovered_at FROM target_profiles WHERE org=$1`, org).
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
