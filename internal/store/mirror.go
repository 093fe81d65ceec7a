package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/directory"
)

// Mirror returns org's persistent directory mirror (directory.Reader.SyncMirror keeps it
// current, SnapshotFromMirror reads a run's snapshot from it).
func (s *Store) Mirror(org string) directory.MirrorStore { return mirror{s: s, org: org} }

// DropMirror deletes org's mirror and sync state: the next read is a full one.
func (s *Store) DropMirror(ctx context.Context, org string) error {
	for _, table := range []string{"directory_mirror", "directory_sync"} {
		if _, err := s.pool.Exec(ctx, `DELETE FROM `+table+` WHERE org=$1`, org); err != nil {
			return fmt.Errorf("drop directory mirror: %w", err)
		}
	}
	return nil
}

type mirror struct {
	s   *Store
	org string
}

func (m mirror) SyncState(ctx context.Context, kind string) (directory.SyncState, bool, error) {
	var st directory.SyncState
	err := m.s.pool.QueryRow(ctx, `SELECT scope, cookie, full_at FROM directory_sync WHERE org=$1 AND kind=$2`,
		m.org, kind).Scan(&st.Scope, &st.Cookie, &st.FullAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return directory.SyncState{}, false, nil
	}
	if err != nil {
		return directory.SyncState{}, false, fmt.Errorf("directory sync state: %w", err)
	}
	return st, true, nil
}

func (m mirror) Begin(ctx context.Context, kind string, full bool) (directory.MirrorTx, error) {
	tx, err := m.s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("directory mirror: %w", err)
	}
	// One read of an organization's kind at a time (a retried activity may overlap the
	// attempt it replaces).
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('directory_mirror:' || $1 || ':' || $2))`, m.org, kind); err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("directory mirror lock: %w", err)
	}
	if full {
		if _, err := tx.Exec(ctx, `DELETE FROM directory_mirror WHERE org=$1 AND kind=$2`, m.org, kind); err != nil {
			_ = tx.Rollback(ctx)
			return nil, fmt.Errorf("directory mirror: replace: %w", err)
		}
	}
	return &mirrorTx{tx: tx, org: m.org, kind: kind}, nil
}

// mirrorPage is how many entries Entries hands over at a time.
const mirrorPage = 1000

func (m mirror) Entries(ctx context.Context, kind string, page func([]directory.MirrorEntry) error) error {
	after := ""
	for {
		rows, err := m.s.pool.Query(ctx, `SELECT uuid, dn, entry FROM directory_mirror
			WHERE org=$1 AND kind=$2 AND uuid > $3 ORDER BY uuid LIMIT $4`, m.org, kind, after, mirrorPage)
		if err != nil {
			return fmt.Errorf("directory mirror: read: %w", err)
		}
		var es []directory.MirrorEntry
		for rows.Next() {
			var e directory.MirrorEntry
			var b []byte
			if err := rows.Scan(&e.UUID, &e.DN, &b); err != nil {
				rows.Close()
				return fmt.Errorf("directory mirror: read: %w", err)
			}
			if err := json.Unmarshal(b, &e.Attrs); err != nil {
				rows.Close()
				return fmt.Errorf("directory mirror: entry %s: %w", e.UUID, err)
			}
			es = append(es, e)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("directory mirror: read: %w", err)
		}
		if len(es) == 0 {
			return nil
		}
		if err := page(es); err != nil {
			return err
		}
		if len(es) < mirrorPage {
			return nil
		}
		after = es[len(es)-1].UUID
	}
}

type mirrorTx struct {
	tx        pgx.Tx
	org, kind string
}

func (t *mirrorTx) Put(ctx context.Context, es []directory.MirrorEntry) error {
	b := &pgx.Batch{}
	for _, e := range es {
		data, err := json.Marshal(e.Attrs) // [][]byte: base64, any byte
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO directory_mirror (org, kind, uuid, dn, entry) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT (org, kind, uuid) DO UPDATE SET dn=excluded.dn, entry=excluded.entry`,
			t.org, t.kind, e.UUID, e.DN, data)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("directory mirror: write %d entries: %w", len(es), err)
	}
	return nil
}

func (t *mirrorTx) Delete(ctx context.Context, uuids []string) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM directory_mirror WHERE org=$1 AND kind=$2 AND uuid = ANY($3)`, t.org, t.kind, uuids)
	if err != nil {
		return 0, fmt.Errorf("directory mirror: delete %d entries: %w", len(uuids), err)
	}
	return int(tag.RowsAffected()), nil
}

func (t *mirrorTx) Commit(ctx context.Context, st directory.SyncState, keep []string) error {
	if keep != nil {
		if _, err := t.tx.Exec(ctx, `DELETE FROM directory_mirror WHERE org=$1 AND kind=$2 AND NOT (uuid = ANY($3))`,
			t.org, t.kind, keep); err != nil {
			return fmt.Errorf("directory mirror: drop entries not present: %w", err)
		}
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO directory_sync (org, kind, scope, cookie, full_at) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (org, kind) DO UPDATE SET scope=excluded.scope, cookie=excluded.cookie, full_at=excluded.full_at`,
		t.org, t.kind, st.Scope, st.Cookie, st.FullAt); err != nil {
		return fmt.Errorf("directory sync state: %w", err)
	}
	if err := t.tx.Commit(ctx); err != nil {
		return fmt.Errorf("directory mirror: commit: %w", err)
	}
	return nil
}

func (t *mirrorTx) Rollback(ctx context.Context) { _ = t.tx.Rollback(ctx) }
