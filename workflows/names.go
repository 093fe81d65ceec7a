// Package workflows orchestrates syncs with Temporal. It holds no I/O: every read and write is
// an activity (a step), scheduled by its name in package steps and implemented by package
// activities, which workflow code does not import: it links no PostgreSQL, LDAP or SCIM code.
package workflows

import "fmt"

// Task queues. SCIM calls run on their own queue so that the target's rate limit can be
// enforced by the server across all workers (TaskQueueActivitiesPerSecond). The directory
// reads and plans, and the page evaluations, run on lanes of their own whose workers take a
// bounded number at a time (engine.Options.Syncs, Pages): when a thousand organizations'
// schedules fire at once, the rest wait in the server's queue, in order, holding nothing.
const (
	TaskQueue     = "usersync"
	SCIMTaskQueue = "usersync-scim"
	ReadTaskQueue = "usersync-read"
	PageTaskQueue = "usersync-pages"
)

// Signals and queries of UserSyncWorkflow.
const (
	SignalEnable             = "enable"
	SignalDisable            = "disable"
	SignalRetry              = "retry"
	SignalSyncNow            = "sync-now"
	SignalApproveSuspensions = "approve-suspensions"
	SignalRun                = "run" // one sync, on or off (RunSignal)
	QueryStatus              = "status"
	QueryProgress            = "progress" // of SyncRunWorkflow
	// QueryPageProgress is a page's counts so far (PageResult), of ProcessPageWorkflow: the
	// run counts a page when it ends, the CLI adds the pages still running.
	QueryPageProgress = "page-progress"
)

// PageWorkflowID is the ID of a run's page child n.
func PageWorkflowID(runID string, n int) string { return fmt.Sprintf("%s/page/%d", runID, n) }

// OrgWorkflowID is the ID of an organization's long-lived sync workflow.
func OrgWorkflowID(org string) string { return "usersync/" + org }

// RunWorkflowID is the ID of one sync run.
func RunWorkflowID(org, suffix string) string { return fmt.Sprintf("usersync/%s/run/%s", org, suffix) }
