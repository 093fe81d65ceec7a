package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// A target that refuses our credentials stops the run with one run-level failure
// (target_auth), at the start or in the middle: no user is marked failed for it, no seat is
// left reserved for a write that never happened, and once the token is fixed the next sync
// finishes the job.
func TestRefusedCredentialsStopTheRunNotTheUsers(t *testing.T) {
	s := newStack(t, demo.Generate(300, 3))

	// Refused from the first request: the discovery stops the run before anything is written.
	s.sandbox.FailNext(1_000_000, http.StatusUnauthorized)
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "ops"})
	first := s.waitRun("")
	require.Equal(t, vocab.RunFailed, first.Status)
	require.Equal(t, vocab.TargetAuth, first.FailureType, first.Error)
	require.Empty(t, s.failures(vocab.Filter{}), "no user is failed for the target's refusal")
	require.Empty(t, s.sandbox.Users())
	bs, err := s.store.Banners(s.ctx, org)
	require.NoError(t, err)
	require.Len(t, bs, 1)
	require.True(t, bs[0].RunLevel)
	require.Equal(t, vocab.TargetAuth, bs[0].Type)
	require.Contains(t, bs[0].Advice, "check the token")

	// Accepted again, then refused in the middle of the run.
	s.sandbox.FailNext(0, 0)
	s.sandbox.SetLatency(40 * time.Millisecond)
	s.signal(workflows.SignalSyncNow, workflows.ActorSignal{Actor: "ops"})
	require.Eventually(t, func() bool { return len(s.linked()) >= 20 }, 2*time.Minute, 20*time.Millisecond)
	s.sandbox.FailNext(1_000_000, http.StatusUnauthorized)
	second := s.waitRun(first.RunID)
	require.Equal(t, vocab.RunFailed, second.Status)
	require.Equal(t, vocab.TargetAuth, second.FailureType, second.Error)
	require.Empty(t, s.failures(vocab.Filter{}), "no user is failed for the target's refusal")
	s.sandbox.FailNext(0, 0)
	linked := len(s.linked())
	require.Less(t, linked, 300, "the run stopped before the end")
	require.Equal(t, s.activeWith(demo.Meeting), s.seatsUsed(demo.Meeting), "seats counted == entitlements held")

	// Fixed: the next sync provisions the rest and the banner goes.
	s.sandbox.SetLatency(0)
	s.signal(workflows.SignalSyncNow, workflows.ActorSignal{Actor: "ops"})
	third := s.waitRun(second.RunID)
	require.Equal(t, vocab.RunSucceeded, third.Status, third.Error)
	require.Equal(t, 300-linked, third.Outcomes[vocab.Created])
	require.Len(t, s.linked(), 300)
	require.Equal(t, s.activeWith(demo.Meeting), s.seatsUsed(demo.Meeting))
	bs, err = s.store.Banners(s.ctx, org)
	require.NoError(t, err)
	require.Empty(t, bs)
}
