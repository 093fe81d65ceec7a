package vocab

// Run statuses (runs.status, RunSummary.status).
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// Run kinds: what started a run (runs.kind, the run's input).
const (
	KindScheduled = "scheduled" // the schedule, or enabling sync
	KindManual    = "manual"    // sync-now, approve-suspensions, the CLI's run
	KindRetry     = "retry"     // a retry of failed users
	KindWatch     = "watch"     // watch mode saw the directory change
)
