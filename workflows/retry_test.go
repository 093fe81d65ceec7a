package workflows

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/vocab"
)

// ProvisionUser's retry policy outlasts a target unavailable for 5 minutes: every user is
// provisioned once it is back, none is failed and the run goes on. Also when the shared
// request pace sends each user away (a retry with its turn as the delay) before every attempt
// that reaches the target: those attempts count too.
func TestProvisionRetriesOutlastAFiveMinuteOutage(t *testing.T) {
	for _, paced := range []bool{false, true} {
		t.Run(fmt.Sprintf("paced=%v", paced), func(t *testing.T) {
			e := newRunEnv(t, 6)
			var mu sync.Mutex
			var back time.Time
			calls := map[int]int{}
			e.failProvision = func(seq int) error {
				mu.Lock()
				defer mu.Unlock()
				if back.IsZero() {
					back = e.Now().Add(5 * time.Minute)
				}
				calls[seq]++
				if paced && calls[seq]%2 == 1 {
					return temporal.NewApplicationErrorWithOptions("the target's request pace is taken for now", activities.RequestPaced,
						temporal.ApplicationErrorOptions{NextRetryDelay: 3 * time.Second})
				}
				if e.Now().Before(back) {
					return temporal.NewApplicationError("scim POST /Users: 503 Service Unavailable", vocab.TargetUnavailable)
				}
				return nil
			}
			e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual})
			require.NoError(t, e.GetWorkflowError())
			e.AssertNotCalled(t, "RecordUserFailure", mock.Anything, mock.Anything)
			e.AssertNotCalled(t, "ProbeTarget", mock.Anything, mock.Anything)
			require.Equal(t, vocab.RunSucceeded, e.finished.Status)
			require.Equal(t, 6, e.finished.Outcomes[vocab.Created])
			require.False(t, e.Now().Before(back), "the outage lasted its 5 minutes")
			require.Empty(t, e.finished.Failures[vocab.TargetUnavailable])
			for seq, n := range e.provision {
				require.LessOrEqual(t, n, int(provisionOptions.RetryPolicy.MaximumAttempts), "user %d", seq)
			}
		})
	}
}
