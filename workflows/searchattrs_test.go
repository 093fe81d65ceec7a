package workflows

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// compose registers the search attributes the workflows upsert: one it misses fails every
// workflow task that upserts it.
func TestComposeRegistersEverySearchAttribute(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var got []SearchAttribute
	for _, m := range regexp.MustCompile(`\b(Usersync\w+)=(\w+)`).FindAllStringSubmatch(string(b), -1) {
		got = append(got, SearchAttribute{m[1], m[2]})
	}
	require.ElementsMatch(t, SearchAttributes, got)
	for _, k := range []temporal.SearchAttributeKey{SAOrg, SASyncOn, SAFailedUsers, SAFailureTypes, SAHeldSuspensions, SARunKind, SARunOutcome, SALastRun} {
		require.True(t, slices.ContainsFunc(SearchAttributes, func(a SearchAttribute) bool { return a.Name == k.GetName() }), k.GetName())
	}
}

func TestRunOutcomeTellsAPartialRunFromACleanOne(t *testing.T) {
	sum := func(status string, failures map[string]int) steps.RunSummary {
		return steps.RunSummary{FinishInput: steps.FinishInput{Status: status, Failures: failures}}
	}
	require.Equal(t, OutcomeClean, RunOutcome(sum(vocab.RunSucceeded, map[string]int{vocab.OutOfLicenses: 0})))
	require.Equal(t, OutcomePartial, RunOutcome(sum(vocab.RunSucceeded, map[string]int{vocab.OutOfLicenses: 65})))
	require.Equal(t, OutcomePartial, RunOutcome(sum(vocab.RunCancelled, nil)))
	require.Equal(t, OutcomeFailed, RunOutcome(sum(vocab.RunFailed, nil)))
}
