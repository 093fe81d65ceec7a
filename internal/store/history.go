package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersync/usersync/internal/vocab"
)

// HistoryFilter selects events; zero fields match everything.
type HistoryFilter struct {
	Type, Actor, Status string
	Since, Until        time.Time
	Limit               int
}

// AddEvent appends to the history.
func (s *Store) AddEvent(ctx context.Context, e vocab.Event) error {
	return addEvent(ctx, s.pool, e)
}

func addEvent(ctx context.Context, db dbtx, e vocab.Event) error {
	if e.Actor == "" {
		e.Actor = "system"
	}
	// What a signal carried is recorded as text PostgreSQL can hold (no NUL, valid UTF-8):
	// a history write must not fail on a value, or the action it records would wait on it.
	e.Actor, e.Action, e.Status = storableText(e.Actor), storableText(e.Action), storableText(e.Status)
	e.Details = storableDetails(e.Details)
	if e.Status == "" {
		e.Status = "ok"
	}
	details, err := json.Marshal(e.Details)
	if err != nil {
		return fmt.Errorf("history details: %w", err)
	}
	if e.Details == nil {
		details = []byte("{}")
	}
	_, err = db.Exec(ctx, `INSERT INTO history (org, actor, type, action, status, details) VALUES ($1,$2,$3,$4,$5,$6)`,
		e.Org, e.Actor, e.Type, e.Action, e.Status, details)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") {
		return fmt.Errorf("write history: %w: %s", ErrInvalidValue, pgErr.Message)
	}
	if err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

// storableText is s without NUL and with invalid UTF-8 replaced.
func storableText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
}

// storableDetails applies storableText to every string (keys included) of details.
func storableDetails(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[storableText(k)] = storableValue(v)
	}
	return out
}

func storableValue(v any) any {
	switch x := v.(type) {
	case string:
		return storableText(x)
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = storableText(s)
		}
		return out
	case map[string]any:
		return storableDetails(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = storableValue(e)
		}
		return out
	}
	return v
}

// History lists events, newest first.
func (s *Store) History(ctx context.Context, org string, f HistoryFilter) ([]vocab.Event, error) {
	where := []string{"org = $1"}
	args := []any{org}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Type != "" {
		add("type = $%d", f.Type)
	}
	if f.Actor != "" {
		add("actor = $%d", f.Actor)
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if !f.Since.IsZero() {
		add("at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("at < $%d", f.Until)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT id, org, at, actor, type, action, status, details, db_role FROM history WHERE `+
		strings.Join(where, " AND ")+fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var out []vocab.Event
	for rows.Next() {
		var e vocab.Event
		if err := rows.Scan(&e.ID, &e.Org, &e.At, &e.Actor, &e.Type, &e.Action, &e.Status, &e.Details, &e.DBRole); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// change runs fn and records e in one transaction.
func (s *Store) change(ctx context.Context, e vocab.Event, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return addEvent(ctx, tx, e)
	})
}
