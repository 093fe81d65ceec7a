package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/metrics"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/workflows"
)

// pageSteps is a worker whose pages have nothing to do: a page workflow is its workflow tasks
// and one evaluation (on the page lane). Any other step would panic (none is called).
type pageSteps struct{ Steps }

func (*pageSteps) EvaluatePage(context.Context, steps.PageRef) (steps.PageEvaluation, error) {
	return steps.PageEvaluation{}, nil
}

// The cause of issue 10's unfairness: every organization's workflow tasks reach the worker
// through the polls of the main queue, and the SDK's autoscaling took them down to one per lane
// whenever tasks came in a trickle, which is what a large organization behind a slow target
// sends (one page task per user its target accepts). Small organizations' run tasks then
// waited in line behind it, seconds each on a busy server. Here a trickle of page workflows
// (a task now and then, as the throttled organization makes) is what the worker serves, and
// its lanes still hold their floor of polls, ready for the next organization's burst.
func TestWorkerKeepsItsPollsThroughATrickle(t *testing.T) {
	hostPort := devstacktest.Temporal(t)
	sdk := metrics.NewSDK()
	reg := prometheus.NewRegistry()
	reg.MustRegister(sdk)
	c, err := client.Dial(client.Options{HostPort: hostPort, MetricsHandler: sdk.Handler(),
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	stop, err := Start(c, &pageSteps{}, Options{})
	require.NoError(t, err)
	t.Cleanup(stop)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Each task finds the polls waiting for it a while: the server suggests fewer polls.
	for i := range 15 {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("big/run/1/page/%d", i),
			TaskQueue: workflows.TaskQueue}, workflows.ProcessPageWorkflow, workflows.PageInput{
			RunRef: steps.RunRef{Org: "big", RunID: "big/run/1"}, From: i, To: i + 1})
		require.NoError(t, err)
		require.NoError(t, run.Get(ctx, nil))
		time.Sleep(1500 * time.Millisecond)
	}
	polls := pollers(t, reg)
	t.Logf("polls per lane after the trickle: %v", polls)
	for _, lane := range []string{"workflow_task", "workflow_sticky_task"} {
		require.GreaterOrEqual(t, polls[lane], float64(DefaultPollers),
			"the %s polls of %s stay at the floor: the next organization's tasks do not queue behind one poll", lane, workflows.TaskQueue)
	}
}

// pollers is temporal_num_pollers of the main queue, by poller type.
func pollers(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "temporal_num_pollers" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["task_queue"] == workflows.TaskQueue {
				out[labels["poller_type"]] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
