package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/directory"
)

// MembershipIndex returns an index for (*directory.Reader).SnapshotWith that keeps run
// runID's group graph in PostgreSQL and resolves nested groups there, so the reader holds
// one page of groups or users at a time however large the directory.
//
// Its first use drops what an earlier, crashed attempt of the run left; Close (which
// SnapshotWith calls) drops the run's rows. Two reads of the same run must not run at once.
func (s *Store) MembershipIndex(runID string) directory.MembershipIndex {
	return &membershipIndex{s: s, runID: runID}
}

// DropMemberships deletes the membership rows of an index (runID as given to
// MembershipIndex). The index drops its own rows when the read ends.
func (s *Store) DropMemberships(ctx context.Context, runID string) error {
	for _, table := range membershipTables {
		if _, err := s.pool.Exec(ctx, `DELETE FROM `+table+` WHERE run_id=$1`, runID); err != nil {
			return fmt.Errorf("drop memberships: %w", err)
		}
	}
	return nil
}

var membershipTables = []string{"snapshot_groups", "snapshot_group_members", "snapshot_memberships"}

type membershipIndex struct {
	s       *Store
	runID   string
	cleared bool // the rows of an earlier attempt are gone
}

func (x *membershipIndex) clearOnce(ctx context.Context) error {
	if x.cleared {
		return nil
	}
	if err := x.s.DropMemberships(ctx, x.runID); err != nil {
		return err
	}
	x.cleared = true
	return nil
}

// AddGroups copies one page of groups and their members (rows streamed, not built up front:
// a page of AD groups may carry 1500 members each).
func (x *membershipIndex) AddGroups(ctx context.Context, groups []directory.GroupMembers) error {
	if err := x.clearOnce(ctx); err != nil {
		return err
	}
	i := 0
	_, err := x.s.pool.CopyFrom(ctx, pgx.Identifier{"snapshot_groups"}, []string{"run_id", "group_dn"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(groups) {
				return nil, nil
			}
			i++
			return []any{x.runID, groups[i-1].DN}, nil
		}))
	if err != nil {
		return fmt.Errorf("write %d groups: %w", len(groups), err)
	}
	g, m := 0, 0
	_, err = x.s.pool.CopyFrom(ctx, pgx.Identifier{"snapshot_group_members"}, []string{"run_id", "group_dn", "member_dn"},
		pgx.CopyFromFunc(func() ([]any, error) {
			for g < len(groups) && m == len(groups[g].Members) {
				g, m = g+1, 0
			}
			if g == len(groups) {
				return nil, nil
			}
			m++
			return []any{x.runID, groups[g].DN, groups[g].Members[m-1]}, nil
		}))
	if err != nil {
		return fmt.Errorf("write members of %d groups: %w", len(groups), err)
	}
	return nil
}

// resolveSQL walks from each requested group ($2, numbered from 0) down through members that
// are groups, then keeps the members of every group reached that are not groups.
const resolveSQL = `
INSERT INTO snapshot_memberships (run_id, member_dn, idx)
WITH RECURSIVE reached (idx, group_dn) AS (
    SELECT r.n - 1, r.dn FROM unnest($2::text[]) WITH ORDINALITY AS r (dn, n)
    WHERE EXISTS (SELECT 1 FROM snapshot_groups g WHERE g.run_id = $1 AND g.group_dn = r.dn)
  UNION -- not UNION ALL: a (requested, group) pair reached again adds no row, so cycles end
    SELECT reached.idx, m.member_dn FROM reached
    JOIN snapshot_group_members m ON m.run_id = $1 AND m.group_dn = reached.group_dn
    WHERE EXISTS (SELECT 1 FROM snapshot_groups g WHERE g.run_id = $1 AND g.group_dn = m.member_dn)
)
SELECT DISTINCT $1::text, m.member_dn, reached.idx FROM reached
JOIN snapshot_group_members m ON m.run_id = $1 AND m.group_dn = reached.group_dn
WHERE NOT EXISTS (SELECT 1 FROM snapshot_groups g WHERE g.run_id = $1 AND g.group_dn = m.member_dn)`

func (x *membershipIndex) Resolve(ctx context.Context, requested []string) ([]string, error) {
	if err := x.clearOnce(ctx); err != nil { // a directory without groups adds none
		return nil, err
	}
	if requested == nil {
		requested = []string{} // NULL would be no array at all
	}
	// Fresh statistics first: these tables swing from empty to a whole directory between
	// runs, and a plan made for the old numbers ran 200 times slower (56 s instead of 0.25 s
	// at 100,000 users) while autovacuum had not caught up.
	if err := x.s.analyze(ctx, "snapshot_groups", "snapshot_group_members"); err != nil {
		return nil, fmt.Errorf("resolve nested groups: %w", err)
	}
	if _, err := x.s.pool.Exec(ctx, resolveSQL, x.runID, requested); err != nil {
		return nil, fmt.Errorf("resolve nested groups: %w", err)
	}
	if err := x.s.analyze(ctx, "snapshot_memberships"); err != nil { // for the lookups
		return nil, fmt.Errorf("resolve nested groups: %w", err)
	}
	rows, err := x.s.pool.Query(ctx, `SELECT r.dn FROM unnest($2::text[]) WITH ORDINALITY AS r (dn, n)
		WHERE NOT EXISTS (SELECT 1 FROM snapshot_groups g WHERE g.run_id = $1 AND g.group_dn = r.dn)
		ORDER BY r.n`, x.runID, requested)
	if err != nil {
		return nil, fmt.Errorf("find missing groups: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(missing) == 0 {
		missing = nil // as the in-memory index: none is nil
	}
	return missing, err
}

func (x *membershipIndex) Lookup(ctx context.Context, dns []string) (map[string][]int, error) {
	out := map[string][]int{}
	if len(dns) == 0 {
		return out, nil
	}
	rows, err := x.s.pool.Query(ctx, `SELECT member_dn, idx FROM snapshot_memberships
		WHERE run_id = $1 AND member_dn = ANY($2) ORDER BY member_dn, idx`, x.runID, dns)
	if err != nil {
		return nil, fmt.Errorf("look up memberships: %w", err)
	}
	var dn string
	var idx int
	_, err = pgx.ForEachRow(rows, []any{&dn, &idx}, func() error {
		out[dn] = append(out[dn], idx)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up memberships: %w", err)
	}
	return out, nil
}

// Close drops the run's rows even when ctx is already cancelled: a cancelled read must not
// leave its graph behind.
func (x *membershipIndex) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return x.s.DropMemberships(ctx, x.runID)
}
