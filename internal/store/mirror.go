package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/directory"
)

// Mirror returns org's persistent directory mirror (directory.Reader.SyncMirror keeps it
// current, SnapshotFromMirror reads a run's snapshot from it).
func (s *Store) Mirror(org string) directory.MirrorStore { return mirror{org: org, db: s.pool} }

// DropMirror deletes org's mirror and sync state: the next read is a full one. It waits
// for a read under way, so that no read commits a mark over the emptied mirror.
func (s *Store) DropMirror(ctx context.Context, org string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockMirror(ctx, tx, org); err != nil {
			return err
		}
		for _, table := range []string{"directory_sync", "directory_mirror"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE org=$1`, org); err != nil {
				return fmt.Errorf("drop directory mirror: %w", err)
			}
		}
		return nil
	})
}

// lockMirror makes tx the only read of org's mirror until it ends.
func lockMirror(ctx context.Context, tx pgx.Tx, org string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+mirrorLockKey+`)`, org); err != nil {
		return fmt.Errorf("directory mirror lock: %w", err)
	}
	return nil
}

// mirrorLockKey is org's ($1) mirror lock: taken by a transaction (a read, DropMirror) or by
// a session (LockMirror), which then holds it across its transactions.
const mirrorLockKey = `hashtext('directory_mirror:' || $1)`

// mirrorLockPoll is how often LockMirror tries the lock while another holds it; it gives up
// after mirrorLockWait (the step fails, retried: a holder stuck that long is a fault to see,
// not a wait to hide in the heartbeat), and an unlock after mirrorUnlockTimeout.
const (
	mirrorLockPoll      = 100 * time.Millisecond
	mirrorUnlockTimeout = 5 * time.Second
)

var mirrorLockWait = 10 * time.Minute // a variable for the test of the give-up

// LockMirror makes the caller the only user of org's mirror until release: its reads
// (Begin) and views (View) run on one connection that holds the mirror lock, and every
// other read waits, so that a run's read and the snapshot taken from it are one unit (a
// read committed between them would be in no run's changes). It waits for the holder,
// calling wait at each try (the step's heartbeat: waiting is not stalling). The lock goes
// with the connection if the process dies. The returned mirror must not be used
// concurrently (one transaction or view at a time).
func (s *Store) LockMirror(ctx context.Context, org string, wait func()) (_ directory.MirrorStore, release func(), err error) {
	if s.own == nil {
		return nil, nil, errors.New("directory mirror lock: called on a store inside a transaction (InTx), which has no connection of its own to hold it")
	}
	c, err := s.own.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("directory mirror lock: %w", err)
	}
	release = func() {
		// A connection whose unlock failed (or hung: a deadline, so that the step returns)
		// may still hold the lock: it leaves the pool, and PostgreSQL drops its locks.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mirrorUnlockTimeout)
		defer cancel()
		var unlocked bool
		if err := c.QueryRow(uctx, `SELECT pg_advisory_unlock(`+mirrorLockKey+`)`, org).Scan(&unlocked); err != nil || !unlocked {
			_ = c.Hijack().Close(uctx)
			return
		}
		c.Release()
	}
	deadline := time.Now().Add(mirrorLockWait)
	for {
		var got bool
		if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+mirrorLockKey+`)`, org).Scan(&got); err != nil {
			_ = c.Hijack().Close(context.WithoutCancel(ctx)) // it may have taken the lock
			return nil, nil, fmt.Errorf("directory mirror lock: %w", err)
		}
		if got {
			return mirror{org: org, db: c}, release, nil
		}
		if time.Now().After(deadline) {
			c.Release()
			return nil, nil, fmt.Errorf("directory mirror of organization %s: another sync or dry run of it has held it for %s (its read and snapshot); tried again later",
				org, mirrorLockWait)
		}
		wait()
		select {
		case <-ctx.Done():
			c.Release()
			return nil, nil, fmt.Errorf("directory mirror lock: %w", context.Cause(ctx))
		case <-time.After(mirrorLockPoll):
		}
	}
}

type mirror struct {
	org string
	db  interface {
		Begin(ctx context.Context) (pgx.Tx, error)
	} // the pool, or LockMirror's connection
}

// Begin takes the organization's mirror lock first and reads the state after it, in the
// transaction: a retried activity overlapping the attempt it replaces waits for it and then
// reads from the mark it committed, never from the one before.
func (m mirror) Begin(ctx context.Context) (directory.MirrorTx, error) {
	tx, err := m.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("directory mirror: %w", err)
	}
	if err := lockMirror(ctx, tx, m.org); err != nil {
		_ = tx.Rollback(ctx)
		return nil, err
	}
	return &mirrorTx{tx: tx, org: m.org}, nil
}

// View is a read-only REPEATABLE READ transaction: the users and the groups of one
// committed read, whatever commits meanwhile.
func (m mirror) View(ctx context.Context) (directory.MirrorView, error) {
	tx, err := m.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("directory mirror: %w", err)
	}
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("directory mirror: %w", err)
	}
	return mirrorView{tx: tx, org: m.org}, nil
}

// mirrorPage is how many entries Entries hands over at a time.
const mirrorPage = 1000

type mirrorView struct {
	tx  pgx.Tx
	org string
}

func (v mirrorView) Close(ctx context.Context) { _ = v.tx.Rollback(ctx) }

func (v mirrorView) Entries(ctx context.Context, kind string, page func([]directory.MirrorEntry) error) error {
	return v.pages(ctx, kind, "entry", page)
}

func (v mirrorView) Some(ctx context.Context, kind string, uuids []string, page func([]directory.MirrorEntry) error) error {
	for ids := range slices.Chunk(uuids, mirrorPage) {
		rows, err := v.tx.Query(ctx, `SELECT uuid, dn, entry FROM directory_mirror
			WHERE org=$1 AND kind=$2 AND uuid = ANY($3) ORDER BY uuid`, v.org, kind, ids)
		if err != nil {
			return fmt.Errorf("directory mirror: read: %w", err)
		}
		es, err := scanEntries(rows)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			continue
		}
		if err := page(es); err != nil {
			return err
		}
	}
	return nil
}

func (v mirrorView) Names(ctx context.Context, kind string, page func([]directory.MirrorEntry) error) error {
	return v.pages(ctx, kind, "NULL::jsonb", page)
}

func (v mirrorView) Count(ctx context.Context, kind string) (int, error) {
	var n int
	if err := v.tx.QueryRow(ctx, `SELECT count(*) FROM directory_mirror WHERE org=$1 AND kind=$2`, v.org, kind).Scan(&n); err != nil {
		return 0, fmt.Errorf("directory mirror: count: %w", err)
	}
	return n, nil
}

// pages hands the entries of kind to page in UUID order, a mirrorPage at a time, with their
// attributes as the column expression entry gives them (NULL: none).
func (v mirrorView) pages(ctx context.Context, kind, entry string, page func([]directory.MirrorEntry) error) error {
	after := ""
	for {
		rows, err := v.tx.Query(ctx, `SELECT uuid, dn, `+entry+` FROM directory_mirror
			WHERE org=$1 AND kind=$2 AND uuid > $3 ORDER BY uuid LIMIT $4`, v.org, kind, after, mirrorPage)
		if err != nil {
			return fmt.Errorf("directory mirror: read: %w", err)
		}
		es, err := scanEntries(rows)
		if err != nil {
			return err
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

// scanEntries reads rows of (uuid, dn, entry); a NULL entry has no attributes.
func scanEntries(rows pgx.Rows) ([]directory.MirrorEntry, error) {
	defer rows.Close()
	var es []directory.MirrorEntry
	for rows.Next() {
		var e directory.MirrorEntry
		var b []byte
		if err := rows.Scan(&e.UUID, &e.DN, &b); err != nil {
			return nil, fmt.Errorf("directory mirror: read: %w", err)
		}
		if b != nil {
			if err := json.Unmarshal(b, &e.Attrs); err != nil {
				return nil, fmt.Errorf("directory mirror: entry %s: %w", e.UUID, err)
			}
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("directory mirror: read: %w", err)
	}
	return es, nil
}

type mirrorTx struct {
	tx  pgx.Tx
	org string
}

func (t *mirrorTx) State(ctx context.Context, kind string) (directory.SyncState, int, bool, error) {
	var held int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM directory_mirror WHERE org=$1 AND kind=$2`, t.org, kind).Scan(&held); err != nil {
		return directory.SyncState{}, 0, false, fmt.Errorf("directory mirror: count: %w", err)
	}
	var st directory.SyncState
	err := t.tx.QueryRow(ctx, `SELECT scope, cookie, full_at, entries, beyond, coalesce(listed_at, full_at) FROM directory_sync WHERE org=$1 AND kind=$2`,
		t.org, kind).Scan(&st.Scope, &st.Cookie, &st.FullAt, &st.Entries, &st.Beyond, &st.ListedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return directory.SyncState{}, held, false, nil
	}
	if err != nil {
		return directory.SyncState{}, 0, false, fmt.Errorf("directory sync state: %w", err)
	}
	return st, held, true, nil
}

func (t *mirrorTx) Clear(ctx context.Context, kind string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM directory_mirror WHERE org=$1 AND kind=$2`, t.org, kind); err != nil {
		return fmt.Errorf("directory mirror: replace: %w", err)
	}
	return nil
}

func (t *mirrorTx) Put(ctx context.Context, kind string, es []directory.MirrorEntry) error {
	b := &pgx.Batch{}
	for _, e := range es {
		data, err := json.Marshal(e.Attrs) // [][]byte: base64, any byte
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO directory_mirror (org, kind, uuid, dn, entry) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT (org, kind, uuid) DO UPDATE SET dn=excluded.dn, entry=excluded.entry`,
			t.org, kind, e.UUID, e.DN, data)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("directory mirror: write %d entries: %w", len(es), err)
	}
	return nil
}

func (t *mirrorTx) Delete(ctx context.Context, kind string, uuids []string) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM directory_mirror WHERE org=$1 AND kind=$2 AND uuid = ANY($3)`, t.org, kind, uuids)
	if err != nil {
		return 0, fmt.Errorf("directory mirror: delete %d entries: %w", len(uuids), err)
	}
	return int(tag.RowsAffected()), nil
}

func (t *mirrorTx) Keep(ctx context.Context, kind string, uuids []string) ([]directory.MirrorEntry, error) {
	// A user dropped is named by its ID and DN; a group by its members too. Not every user's
	// attributes: a present phase may drop a whole directory.
	entry := "NULL::jsonb"
	if kind == directory.MirrorGroups {
		entry = "entry"
	}
	rows, err := t.tx.Query(ctx, `DELETE FROM directory_mirror WHERE org=$1 AND kind=$2 AND NOT (uuid = ANY($3))
		RETURNING uuid, dn, `+entry, t.org, kind, uuids)
	if err != nil {
		return nil, fmt.Errorf("directory mirror: drop entries not present: %w", err)
	}
	gone, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("directory mirror: drop entries not present: %w", err)
	}
	return gone, nil
}

func (t *mirrorTx) DNs(ctx context.Context, kind string, uuids []string) (map[string]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT uuid, dn FROM directory_mirror WHERE org=$1 AND kind=$2 AND uuid = ANY($3)`, t.org, kind, uuids)
	if err != nil {
		return nil, fmt.Errorf("directory mirror: read DNs: %w", err)
	}
	out := map[string]string{}
	var id, dn string
	_, err = pgx.ForEachRow(rows, []any{&id, &dn}, func() error { out[id] = dn; return nil })
	if err != nil {
		return nil, fmt.Errorf("directory mirror: read DNs: %w", err)
	}
	return out, nil
}

func (t *mirrorTx) Entries(ctx context.Context, kind string, uuids []string) ([]directory.MirrorEntry, error) {
	rows, err := t.tx.Query(ctx, `SELECT uuid, dn, entry FROM directory_mirror WHERE org=$1 AND kind=$2 AND uuid = ANY($3)`,
		t.org, kind, uuids)
	if err != nil {
		return nil, fmt.Errorf("directory mirror: read entries: %w", err)
	}
	return scanEntries(rows)
}

func (t *mirrorTx) SetState(ctx context.Context, kind string, st directory.SyncState) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO directory_sync (org, kind, scope, cookie, full_at, entries, beyond, listed_at)
		VALUES ($1,$2,$3,$4,$5,(SELECT count(*) FROM directory_mirror WHERE org=$1 AND kind=$2),$6,$7)
		ON CONFLICT (org, kind) DO UPDATE SET scope=excluded.scope, cookie=excluded.cookie, full_at=excluded.full_at,
			entries=excluded.entries, beyond=excluded.beyond, listed_at=excluded.listed_at`,
		t.org, kind, st.Scope, st.Cookie, st.FullAt, st.Beyond, listedAt(st)); err != nil {
		return fmt.Errorf("directory sync state: %w", err)
	}
	return nil
}

// listedAt is st's ListedAt, NULL when never (a state of a read before it was kept).
func listedAt(st directory.SyncState) *time.Time {
	if st.ListedAt.IsZero() {
		return nil
	}
	return &st.ListedAt
}

func (t *mirrorTx) Commit(ctx context.Context) error {
	if err := t.tx.Commit(ctx); err != nil {
		return fmt.Errorf("directory mirror: commit: %w", err)
	}
	return nil
}

func (t *mirrorTx) Rollback(ctx context.Context) { _ = t.tx.Rollback(ctx) }
