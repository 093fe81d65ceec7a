package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersync/usersync/internal/plan"
)

// ReserveSeats takes a seat of each product for one user, all or nothing, in one statement.
// The database refuses a seat beyond the count bought (a CHECK on the license row's counter,
// kept by a trigger: migration 003), so two syncs racing cannot over-allocate. Seats the user
// already holds are kept. It returns the first product without a free seat ("" when all were
// taken) and that product's seat count.
func (s *Store) ReserveSeats(ctx context.Context, org, externalID string, products []string) (short string, seats int, err error) {
	if len(products) == 0 {
		return "", 0, nil
	}
	ps := append([]string(nil), products...)
	sort.Strings(ps) // license rows lock in a fixed order: no deadlock between two reservations
	_, err = s.pool.Exec(ctx, `INSERT INTO seats (org, product, external_id)
		SELECT $1, p, $3 FROM unnest($2::text[]) WITH ORDINALITY AS t(p, i) ORDER BY i
		ON CONFLICT DO NOTHING`, org, ps, externalID)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" { // check_violation: a product is full
		if err != nil {
			return "", 0, fmt.Errorf("take seats: %w", err)
		}
		return "", 0, nil
	}
	// Which one? The first product the user does not hold whose seats are all used.
	err = s.pool.QueryRow(ctx, `SELECT t.p, COALESCE(l.seats, 0) FROM unnest($2::text[]) AS t(p)
		LEFT JOIN licenses l ON l.org=$1 AND l.product=t.p
		WHERE NOT EXISTS (SELECT 1 FROM seats s WHERE s.org=$1 AND s.product=t.p AND s.external_id=$3)
		  AND (l.product IS NULL OR l.used >= l.seats)
		ORDER BY t.p LIMIT 1`, org, ps, externalID).Scan(&short, &seats)
	if err == pgx.ErrNoRows { // freed meanwhile: report the first product, the retry will take it
		return ps[0], 0, nil
	}
	return short, seats, err
}

// ReleaseSeats gives back one user's seats of the given products.
func (s *Store) ReleaseSeats(ctx context.Context, org, externalID string, products []string) error {
	if len(products) == 0 {
		return nil
	}
	// Seats of products the linked account holds in the target stay: seats follow what the
	// target holds (an account created before a later step failed keeps its entitlements).
	_, err := s.pool.Exec(ctx, `DELETE FROM seats s WHERE org=$1 AND external_id=$2 AND product = ANY($3)
		AND NOT EXISTS (SELECT 1 FROM user_state u WHERE u.org=$1 AND u.external_id=$2 AND s.product = ANY(u.products))`,
		org, externalID, products)
	if err != nil {
		return fmt.Errorf("release seats: %w", err)
	}
	return nil
}

// SaveProvisioned records what the target holds for a user after run runID wrote it (outcome:
// created, updated, adopted, ...), releases the seats of products it no longer has, and clears
// its failure, in one statement (one round trip per provisioned user).
func (s *Store) SaveProvisioned(ctx context.Context, org, scimID string, d plan.Desired, runID, outcome string) error {
	return s.SaveLinked(ctx, org, scimID, d, d.Products, runID, outcome)
}

// SaveLinked is SaveProvisioned keeping the seats of the products in keep (those d holds,
// and those of a write still in progress for the user) instead of those d holds only.
func (s *Store) SaveLinked(ctx context.Context, org, scimID string, d plan.Desired, keep []string, runID, outcome string) error {
	// An adoption approval is used up by the save, whatever the outcome (an adopted account,
	// or a create after the admin removed the other account instead): it closes in the history,
	// in the approving admin's name, in the same statement.
	_, err := s.pool.Exec(ctx, `WITH
		saved AS (INSERT INTO user_state (org, external_id, scim_id, user_name, active, state, hash, products, groups)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$12,$13)
			ON CONFLICT (org, external_id) DO UPDATE SET scim_id=EXCLUDED.scim_id, user_name=EXCLUDED.user_name,
			active=EXCLUDED.active, state=EXCLUDED.state, hash=EXCLUDED.hash, products=EXCLUDED.products,
			groups=EXCLUDED.groups, updated_at=now() RETURNING 1),
		released AS (DELETE FROM seats WHERE org=$1 AND external_id=$2 AND NOT (product = ANY($8)) RETURNING 1),
		cleared AS (DELETE FROM failures WHERE org=$1 AND external_id=$2 RETURNING 1),
		approval AS (DELETE FROM adoptions WHERE org=$1 AND external_id=$2 RETURNING user_name, approved_by),
		closed AS (INSERT INTO history (org, actor, type, action, status, details)
			SELECT $1, a.approved_by, $11, CASE WHEN $10 = 'adopted' THEN 'adopted' ELSE 'closed' END, 'ok',
				jsonb_build_object('externalId', $2::text, 'userName', a.user_name, 'scimId', $3::text, 'outcome', $10::text, 'run', $9::text)
			FROM approval a RETURNING 1)
		SELECT 1`,
		org, d.ExternalID, scimID, d.UserName, d.Active, d, d.Hash(), nonNil(keep), runID, outcome, EventAdoption,
		nonNil(d.Products), nonNil(plan.GroupsOf(d)))
	if err != nil {
		return fmt.Errorf("save user state: %w", err)
	}
	return nil
}

// FailureRecord is one failed user.
type FailureRecord struct {
	ExternalID string `json:"externalId"`
	UserName   string `json:"userName"`
	plan.Failure
	Since       string `json:"since"`
	LastAttempt string `json:"lastAttempt"`
	Attempts    int    `json:"attempts"`
	RunID       string `json:"runId"`
}

// RecordFailure stores a user's current failure (keeping "since" when the type is unchanged)
// and writes it to the history, in one transaction.
func (s *Store) RecordFailure(ctx context.Context, org, runID, externalID, userName string, f plan.Failure) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO failures (org, external_id, user_name, type, product, message, run_id)
			VALUES ($1,$2,$3,$4,$5,$6,$7)
			ON CONFLICT (org, external_id) DO UPDATE SET user_name=EXCLUDED.user_name, product=EXCLUDED.product,
			message=EXCLUDED.message, run_id=EXCLUDED.run_id, last_attempt=now(), attempts=failures.attempts+1,
			since = CASE WHEN failures.type = EXCLUDED.type THEN failures.since ELSE now() END,
			type=EXCLUDED.type`, org, externalID, userName, f.Type, f.Product, f.Message, runID); err != nil {
			return fmt.Errorf("record failure: %w", err)
		}
		return addEvent(ctx, tx, Event{Org: org, Type: EventFailure, Action: f.Type, Status: "failed",
			Details: map[string]any{"run": runID, "externalId": externalID, "userName": userName, "product": f.Product, "message": f.Message}})
	})
}

// ClearFailures removes failures of users that are now out of scope, and any approval to
// adopt an account for them.
func (s *Store) ClearFailures(ctx context.Context, org string, externalIDs []string) error {
	if len(externalIDs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `WITH f AS (DELETE FROM failures WHERE org=$1 AND external_id = ANY($2) RETURNING 1)
		DELETE FROM adoptions WHERE org=$1 AND external_id = ANY($2)`, org, externalIDs)
	return err
}

// FailureFilter narrows failures; empty fields match everything.
type FailureFilter = plan.Filter

// Failures lists current failures, oldest first.
func (s *Store) Failures(ctx context.Context, org string, f FailureFilter) ([]FailureRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id, user_name, type, product, message,
		to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		to_char(last_attempt AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), attempts, run_id
		FROM failures WHERE org=$1 AND ($2='' OR type=$2) AND ($3='' OR product=$3)
		AND ($4='' OR lower(user_name)=lower($4) OR external_id=$4) ORDER BY type, since, user_name`,
		org, f.Type, f.Product, f.User)
	if err != nil {
		return nil, fmt.Errorf("read failures: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (FailureRecord, error) {
		var x FailureRecord
		return x, r.Scan(&x.ExternalID, &x.UserName, &x.Type, &x.Product, &x.Message, &x.Since, &x.LastAttempt, &x.Attempts, &x.RunID)
	})
}

// FailedUsers returns current failures by externalId, for planning.
func (s *Store) FailedUsers(ctx context.Context, org string) (map[string]plan.Failure, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id, type, product, message FROM failures WHERE org=$1`, org)
	if err != nil {
		return nil, fmt.Errorf("read failures: %w", err)
	}
	defer rows.Close()
	out := map[string]plan.Failure{}
	for rows.Next() {
		var id string
		var f plan.Failure
		if err := rows.Scan(&id, &f.Type, &f.Product, &f.Message); err != nil {
			return nil, err
		}
		out[id] = f
	}
	return out, rows.Err()
}

// Banner is one line per failure type (and product, for licenses).
type Banner struct {
	Type    string `json:"type"`
	Product string `json:"product,omitempty"`
	Users   int    `json:"users"`
	Advice  string `json:"advice"`
	// RunLevel marks the last sync's failure as a whole (no user count).
	RunLevel bool `json:"runLevel,omitempty"`
}

// RunAdvice says what an admin can do about a run-level failure: the sync stopped as a
// whole and no user was changed or marked failed for it.
func RunAdvice(typ string) string {
	switch typ {
	case plan.TargetAuth:
		return "the target refused our credentials: check the token (SCIM_TOKEN / --scim-token-file); the next sync tries again"
	case plan.TargetUnavailable:
		return "the target did not answer for the whole sync; nothing was changed: check it, the next sync tries again"
	case plan.TargetIncompatible:
		return "the target cannot take what this organization writes (see the last sync's error): fix its schema or `starter target set`, then sync"
	}
	return "the last sync stopped: see its error (starter history --type sync)"
}

// Banners groups current failures by type. A run-level failure of the last finished sync
// (credentials refused, target down or incompatible) comes first, with no user count.
func (s *Store) Banners(ctx context.Context, org string) ([]Banner, error) {
	var last string
	err := s.pool.QueryRow(ctx, `SELECT failure_type FROM runs WHERE org=$1 AND NOT dry_run AND finished_at IS NOT NULL
		ORDER BY finished_at DESC LIMIT 1`, org).Scan(&last)
	if err != nil && err != pgx.ErrNoRows {
		return nil, fmt.Errorf("read banners: %w", err)
	}
	return s.BannersWith(ctx, org, last)
}

// BannersWith is the banners of the users' failures, after the banner of a run-level failure
// of type runFailure (none when "").
func (s *Store) BannersWith(ctx context.Context, org, runFailure string) ([]Banner, error) {
	var bs []Banner
	if runFailure != "" {
		bs = append(bs, Banner{Type: runFailure, RunLevel: true, Advice: RunAdvice(runFailure)})
	}
	rows, err := s.pool.Query(ctx, `SELECT type, product, count(*) FROM failures WHERE org=$1
		GROUP BY type, product ORDER BY type, product`, org)
	if err != nil {
		return nil, fmt.Errorf("read banners: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Banner, error) {
		var b Banner
		err := r.Scan(&b.Type, &b.Product, &b.Users)
		b.Advice = Advice(b.Type, b.Product)
		return b, err
	})
	return append(bs, users...), err
}

// Advice says what an admin can do about a failure type.
func Advice(typ, product string) string {
	switch typ {
	case plan.OutOfLicenses:
		return fmt.Sprintf("buy seats of %s (starter licenses set %s <n>), then starter retry --type out_of_licenses", product, product)
	case plan.ExistingAccount:
		return "an unlinked account with this userName exists in the target: adopt it (starter adopt <userName>), or remove or rename it and retry"
	case plan.DomainNotValidated:
		return "validate the email domain (starter domains validate <domain>), then starter retry --type domain_not_validated"
	case plan.InvalidUserData:
		return "fix userName/email in the directory; the next sync picks it up"
	case plan.TargetRejected:
		return "the target refused the change; see details, fix, then retry"
	case plan.TargetUnavailable:
		return "the target did not answer after retries; check it, then starter retry --type target_unavailable"
	case plan.SuspensionHeld:
		return "more suspensions than the safety threshold: check the directory, then approve (starter approve-suspensions)"
	}
	return ""
}

// ScimGroupID returns the cached target ID of a group ("" when unknown).
func (s *Store) ScimGroupID(ctx context.Context, org, name string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT scim_id FROM scim_groups WHERE org=$1 AND name=$2`, org, name).Scan(&id)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	return id, err
}

// SaveScimGroupID caches a group's target ID.
func (s *Store) SaveScimGroupID(ctx context.Context, org, name, id string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO scim_groups (org, name, scim_id) VALUES ($1,$2,$3)
		ON CONFLICT (org, name) DO UPDATE SET scim_id=EXCLUDED.scim_id`, org, name, id)
	return err
}

// ForgetScimGroup drops a group the target no longer has (deleted by hand): its cached ID and
// the memberships written to it. The next group step finds or creates it and adds every member.
func (s *Store) ForgetScimGroup(ctx context.Context, org, name string) error {
	_, err := s.pool.Exec(ctx, `WITH g AS (DELETE FROM scim_groups WHERE org=$1 AND name=$2 RETURNING 1)
		DELETE FROM group_members WHERE org=$1 AND name=$2`, org, name)
	if err != nil {
		return fmt.Errorf("forget group %q: %w", name, err)
	}
	return nil
}

// GroupDelta is a membership change of one target group: all of it, or one chunk.
type GroupDelta struct {
	Name        string
	Add, Remove []string // target user IDs
}

// GroupDeltas compares the memberships the applied user states call for (active users only)
// with those last written to the target, and streams the differences group by group in
// chunks of at most chunk additions and chunk removals (chunk <= 0: one delta per group).
// Additions and removals are interleaved, so a chunk fills both. The differences are computed
// once into the run's rows of group_deltas and read back in short queries: memory holds one
// chunk and no query stays open while fn writes to the target.
func (s *Store) GroupDeltas(ctx context.Context, org, runID string, chunk int, fn func(GroupDelta) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM group_deltas WHERE run_id=$1`, runID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
		WITH desired AS (
			SELECT DISTINCT g.name, u.scim_id AS scim_user FROM user_state u, LATERAL unnest(u.groups) AS g(name)
			WHERE u.org=$1),
		applied AS (SELECT name, scim_user FROM group_members WHERE org=$1),
		delta AS (
			SELECT name, scim_user, true AS add FROM (SELECT * FROM desired EXCEPT SELECT * FROM applied) a
			UNION ALL
			SELECT name, scim_user, false FROM (SELECT * FROM applied EXCEPT SELECT * FROM desired) r),
		ranked AS (
			SELECT name, scim_user, add, row_number() OVER (PARTITION BY name, add ORDER BY scim_user) AS rank FROM delta)
		INSERT INTO group_deltas (run_id, seq, name, scim_user, add)
		SELECT $2, row_number() OVER (ORDER BY name, rank, add DESC), name, scim_user, add FROM ranked`, org, runID)
		return err
	})
	if err != nil {
		return fmt.Errorf("group deltas: %w", err)
	}
	var d GroupDelta
	flush := func() error {
		if len(d.Add) == 0 && len(d.Remove) == 0 {
			return nil
		}
		err := fn(d)
		d = GroupDelta{Name: d.Name}
		return err
	}
	type row struct {
		Seq            int
		Name, ScimUser string
		Add            bool
	}
	for last := 0; ; {
		rows, err := s.pool.Query(ctx, `SELECT seq, name, scim_user, add FROM group_deltas
			WHERE run_id=$1 AND seq > $2 ORDER BY seq LIMIT 1000`, runID, last)
		if err != nil {
			return fmt.Errorf("group deltas: %w", err)
		}
		page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			return fmt.Errorf("group deltas: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			list := &d.Remove
			if r.Add {
				list = &d.Add
			}
			if r.Name != d.Name || (chunk > 0 && len(*list) == chunk) {
				if err := flush(); err != nil {
					return err
				}
				d.Name = r.Name
			}
			*list = append(*list, r.ScimUser)
		}
		last = page[len(page)-1].Seq
	}
	if err := flush(); err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `DELETE FROM group_deltas WHERE run_id=$1`, runID)
	return err
}

// SaveGroupMembers records a membership change written to the target.
func (s *Store) SaveGroupMembers(ctx context.Context, org, name string, add, remove []string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(add) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO group_members (org, name, scim_user)
				SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`, org, name, add); err != nil {
				return err
			}
		}
		if len(remove) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE org=$1 AND name=$2 AND scim_user = ANY($3)`, org, name, remove); err != nil {
				return err
			}
		}
		return nil
	})
}
