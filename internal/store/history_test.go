package store_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// Spec 9: the activity history is filterable by type, actor, status and time range.
func TestHistoryFilters(t *testing.T) {
	st, ctx := openStore(t)
	day := func(n int) time.Time { return time.Date(2025, 3, n, 12, 0, 0, 0, time.UTC) }
	events := []struct {
		at time.Time
		e  vocab.Event
	}{
		{day(1), vocab.Event{Actor: "alice", Type: vocab.EventSwitch, Action: "enable"}},
		{day(2), vocab.Event{Type: vocab.EventSync, Action: "sync started"}},
		{day(3), vocab.Event{Actor: "bob", Type: vocab.EventRetry, Action: "retry", Status: "rejected",
			Details: map[string]any{"reason": "user sync is off"}}},
		{day(4), vocab.Event{Actor: "alice", Type: vocab.EventLicense, Action: "set"}},
		{day(5), vocab.Event{Actor: "alice", Type: vocab.EventSwitch, Action: "disable"}},
	}
	for _, x := range events {
		// Events are stamped by the database and the history is append-only: each is written
		// on its day directly (AddEvent's defaults: actor "system", status "ok").
		actor, status := x.e.Actor, x.e.Status
		if actor == "" {
			actor = "system"
		}
		if status == "" {
			status = "ok"
		}
		details := x.e.Details
		if details == nil {
			details = map[string]any{}
		}
		_, err := st.Pool().Exec(ctx, `INSERT INTO history (org, at, actor, type, action, status, details) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
			org, x.at, actor, x.e.Type, x.e.Action, status, details)
		require.NoError(t, err)
	}
	require.NoError(t, st.AddEvent(ctx, vocab.Event{Org: "other", Actor: "alice", Type: vocab.EventSwitch, Action: "enable"}))

	actions := func(f store.HistoryFilter) []string {
		es, err := st.History(ctx, org, f)
		require.NoError(t, err)
		var out []string
		for _, e := range es {
			require.Equal(t, org, e.Org)
			out = append(out, e.Action)
		}
		return out
	}
	require.Equal(t, []string{"disable", "set", "retry", "sync started", "enable"}, actions(store.HistoryFilter{}), "newest first")
	require.Equal(t, []string{"disable", "enable"}, actions(store.HistoryFilter{Type: vocab.EventSwitch}))
	require.Equal(t, []string{"disable", "set", "enable"}, actions(store.HistoryFilter{Actor: "alice"}))
	require.Equal(t, []string{"sync started"}, actions(store.HistoryFilter{Actor: "system"}), "no actor is the system")
	require.Equal(t, []string{"retry"}, actions(store.HistoryFilter{Status: "rejected"}))
	require.Len(t, actions(store.HistoryFilter{Status: "ok"}), 4, "status defaults to ok")
	require.Equal(t, []string{"set", "retry"}, actions(store.HistoryFilter{Since: day(3), Until: day(5)}),
		"since is inclusive, until exclusive")
	require.Equal(t, []string{"disable", "set"}, actions(store.HistoryFilter{Since: day(4)}))
	require.Equal(t, []string{"sync started", "enable"}, actions(store.HistoryFilter{Until: day(3)}))
	require.Equal(t, []string{"disable", "set"}, actions(store.HistoryFilter{Limit: 2}), "limit keeps the newest")
	require.Equal(t, []string{"set"}, actions(store.HistoryFilter{Actor: "alice", Type: vocab.EventLicense, Since: day(2)}))

	es, err := st.History(ctx, org, store.HistoryFilter{Status: "rejected"})
	require.NoError(t, err)
	require.Equal(t, "user sync is off", es[0].Details["reason"])
	require.True(t, es[0].At.Equal(day(3)))
}

// The history is an audit trail: no UPDATE, DELETE or TRUNCATE goes through, and each row
// names the database role that wrote it.
func TestHistoryIsAppendOnly(t *testing.T) {
	st, ctx, url := openStoreURL(t)
	require.NoError(t, st.AddEvent(ctx, vocab.Event{Org: "acme", Actor: "alice", Type: vocab.EventSetting, Action: "set"}))
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, sql := range []string{
		`UPDATE history SET actor='mallory'`,
		`DELETE FROM history`,
		`TRUNCATE history`,
	} {
		_, err := conn.Exec(ctx, sql)
		require.ErrorContains(t, err, "append-only", sql)
	}
	es, err := st.History(ctx, "acme", store.HistoryFilter{})
	require.NoError(t, err)
	require.Len(t, es, 1)
	require.Equal(t, "alice", es[0].Actor)
	require.NotEmpty(t, es[0].DBRole, "the database role is recorded beside the declared actor")
}

// A history row never fails on what a signal carried: a NUL or invalid UTF-8 (which
// PostgreSQL's text and jsonb refuse) is stored replaced, so the action is not held up.
func TestHistoryTakesAnyValue(t *testing.T) {
	st, ctx := openStore(t)
	require.NoError(t, st.AddEvent(ctx, vocab.Event{Org: "acme", Actor: "a\x00b\xff", Type: vocab.EventSync, Action: "sync-now",
		Details: map[string]any{"user\x00": "x\x00y", "list": []string{"\xff"}, "nested": map[string]any{"v": "n\x00"}}}))
	got, err := st.History(ctx, "acme", store.HistoryFilter{Limit: 1})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "a\uFFFDb\uFFFD", got[0].Actor)
	require.Equal(t, "x\uFFFDy", got[0].Details["user\uFFFD"])
}
