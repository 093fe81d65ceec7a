package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// stages is where the runs of a phase spent their time, read from their histories: from the
// organization's signal to the run workflow's start, each workflow task's and activity's wait
// in its queue and its execution, and from FinishRun's record to the run workflow's close. The
// fairness rows compare them alone and beside the big organization, to show which part grows.
type stages map[string][]time.Duration

// stagesOf reads the history of every run (8 at a time) and collects its stages; signalled
// is when each organization was signalled.
func (f *fleet) stagesOf(ctx context.Context, runs map[string]finished, signalled map[string]time.Time) stages {
	var mu sync.Mutex
	out := stages{}
	add := func(name string, d time.Duration) {
		mu.Lock()
		out[name] = append(out[name], d)
		mu.Unlock()
	}
	var orgs []string
	for org := range runs {
		orgs = append(orgs, org)
	}
	_ = each(orgs, 8, func(org string) error {
		r := runs[org]
		var events []*historypb.HistoryEvent
		it := f.s.Client.GetWorkflowHistory(ctx, r.runID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return nil
			}
			events = append(events, e)
		}
		if len(events) == 0 {
			return nil
		}
		at := func(e *historypb.HistoryEvent) time.Time { return e.GetEventTime().AsTime() }
		if s, ok := signalled[org]; ok {
			add("0 signal -> run started", at(events[0]).Sub(s))
		}
		scheduled := map[int64]*historypb.HistoryEvent{}
		started := map[int64]*historypb.HistoryEvent{}
		var wftWait, wftRun time.Duration
		for _, e := range events {
			switch e.GetEventType() {
			case enums.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				scheduled[e.GetEventId()] = e
			case enums.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				if s := scheduled[e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()]; s != nil {
					wftWait += at(e).Sub(at(s))
				}
				started[e.GetEventId()] = e
			case enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				if s := started[e.GetWorkflowTaskCompletedEventAttributes().GetStartedEventId()]; s != nil {
					wftRun += at(e).Sub(at(s))
				}
			case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				started[e.GetEventId()] = e
			case enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				a := e.GetActivityTaskCompletedEventAttributes()
				s, st := scheduled[a.GetScheduledEventId()], started[a.GetStartedEventId()]
				if s == nil || st == nil {
					continue
				}
				name := s.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
				add("2 "+name+" queue", at(st).Sub(at(s)))
				add("3 "+name+" run", at(e).Sub(at(st)))
			}
		}
		add("1 workflow tasks' queue", wftWait)
		add("1 workflow tasks' run", wftRun)
		end := at(events[len(events)-1])
		add("4 run", end.Sub(at(events[0])))
		add("5 finish recorded -> run closed", end.Sub(r.finishedAt))
		return nil
	})
	return out
}

// p50 and p95 of each stage, one "stage p50/p95" per stage, in stage order.
func (s stages) String() string {
	names := slices.Sorted(maps.Keys(s))
	var parts []string
	for _, n := range names {
		d := slices.Clone(s[n])
		slices.Sort(d)
		parts = append(parts, fmt.Sprintf("%s %s/%s", n[2:], pct(d, 50), pct(d, 95)))
	}
	return strings.Join(parts, "; ")
}
