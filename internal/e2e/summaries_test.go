package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/converter"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// Ops read histories in the UI: each run and page says what it is, each step which action for
// which item (no user named), and the organization's workflow its current state.
func TestHistoriesReadWithoutOpeningPayloads(t *testing.T) {
	s := newStack(t, demo.Org())
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "alice"})
	first := s.waitRun("")
	waiting := s.failures(vocab.Filter{Type: vocab.OutOfLicenses})
	require.NotEmpty(t, waiting)
	require.NoError(t, s.store.SetLicense(s.ctx, org, "alice", demo.Webinar, 60+len(waiting)))
	s.signal(workflows.SignalRetry, workflows.RetrySignal{Actor: "alice", Filter: vocab.Filter{Type: vocab.OutOfLicenses}})
	retry := s.waitRun(first.RunID)

	summary := func(id string) (string, string) {
		d, err := s.client.DescribeWorkflow(s.ctx, id, "")
		require.NoError(t, err, id)
		sum, err := d.GetStaticSummary()
		require.NoError(t, err)
		det, err := d.GetStaticDetails()
		require.NoError(t, err)
		return sum, det
	}
	sum, det := summary(first.RunID)
	require.Equal(t, "scheduled sync by alice", sum)
	require.Contains(t, det, "organization **"+org+"**")
	sum, _ = summary(retry.RunID)
	require.Equal(t, "retry of out_of_licenses by alice", sum)
	sum, _ = summary(first.RunID + "/page/0")
	require.Regexp(t, `^page 0: users 0-\d+$`, sum)

	// The steps of the retry's page: which action for which item, by seq.
	var summaries []string
	iter := s.client.GetWorkflowHistory(s.ctx, retry.RunID+"/page/0", "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		require.NoError(t, err)
		if p := e.GetUserMetadata().GetSummary(); p != nil {
			var text string
			require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &text))
			summaries = append(summaries, text)
		}
	}
	t.Logf("step summaries: %q", summaries)
	provisions := 0
	for _, text := range summaries {
		if strings.HasPrefix(text, "provision ") {
			require.Regexp(t, regexp.MustCompile(`^provision item \d+ \(create\) seats .*`+demo.Webinar), text)
			provisions++
		}
		for _, f := range waiting {
			require.NotContains(t, text, f.UserName, "no personal data in summaries")
			require.NotContains(t, text, f.ExternalID)
		}
	}
	require.Equal(t, len(waiting), provisions, "one ProvisionUser per retried user, each summarized")
	require.Contains(t, summaries, "evaluate users 0-"+itoa(len(waiting)-1))

	// The organization's workflow: its current details.
	v, err := s.client.QueryWorkflow(s.ctx, workflows.OrgWorkflowID(org), "", "__temporal_workflow_metadata")
	require.NoError(t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&md))
	details := md.GetCurrentDetails()
	t.Logf("current details:\n%s", details)
	require.Contains(t, details, "**Sync on**, every 1h")
	require.Contains(t, details, "Next run: ")
	require.Contains(t, details, "Last run: "+retry.RunID+", retry succeeded")
	require.Contains(t, details, "Banners: ")
	require.Contains(t, details, vocab.DomainNotValidated)
}

func itoa(n int) string { return strconv.Itoa(n) }
