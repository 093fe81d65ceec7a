package workflows

import (
	"encoding/json"
	"time"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// RunInput starts one sync.
type RunInput struct {
	Org                string        `json:"org"`
	RunID              string        `json:"runId"`
	Kind               string        `json:"kind"`
	DryRun             bool          `json:"dryRun,omitempty"`
	Retry              *vocab.Filter `json:"retry,omitempty"`
	ApproveSuspensions bool          `json:"approveSuspensions,omitempty"`
	// ApprovedHeld is the digest of the held set approved (vocab.HeldDigest): the run applies
	// the suspensions only if they are that set. Empty: any (approved before digests).
	ApprovedHeld string `json:"approvedHeld,omitempty"`
	Actor        string `json:"actor,omitempty"`
	// Shape of the fan-out; zero values take the worker's settings, then the defaults.
	PageSize      int `json:"pageSize,omitempty"`
	PageWindow    int `json:"pageWindow,omitempty"`
	UsersInFlight int `json:"usersInFlight,omitempty"`
	// Resume is set when a run continues as new in the middle of its fan-out.
	Resume *RunResume `json:"resume,omitempty"`
}

// RunResume is what a run carries across continue-as-new: its counts so far and the next
// page to start. Directory read and plan are done; the items are in the store.
type RunResume struct {
	Finish         steps.FinishInput `json:"finish"`
	ProvisionQueue string            `json:"provisionQueue"`
	NextPage       int               `json:"nextPage"`
	UsersDone      int               `json:"usersDone"`
}

// Fan-out defaults: many small pages in parallel, a few users in flight each (defined in
// package steps, which the activities sizing a paced organization's window also read).
const (
	DefaultPageSize      = steps.DefaultPageSize
	DefaultPageWindow    = steps.DefaultPageWindow
	DefaultUsersInFlight = steps.DefaultUsersInFlight
)

// PageInput is one page of a run: items [From, To).
type PageInput struct {
	steps.RunRef
	From           int    `json:"from"`
	To             int    `json:"to"`
	UsersInFlight  int    `json:"usersInFlight"`
	ProvisionQueue string `json:"provisionQueue,omitempty"`
}

// PageResult counts a page's outcomes.
type PageResult struct {
	Outcomes map[string]int `json:"outcomes"`
	Failures map[string]int `json:"failures"`
	// Stopped is set when the page stopped the run: the target refused our credentials or
	// was down for every request. The counts above still hold what the page did before.
	Stopped *RunStop `json:"stopped,omitempty"`
}

// RunStop is a run-level failure (spec 9): its type and message.
type RunStop struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Progress is a run's progress, for the UI and the CLI.
type Progress struct {
	RunID     string    `json:"runId"`
	Phase     string    `json:"phase"` // reading directory, planning, provisioning, groups, done
	StartedAt time.Time `json:"startedAt"`
	Items     int       `json:"items"`
	Pages     int       `json:"pages"`
	PagesDone int       `json:"pagesDone"`
	UsersDone int       `json:"usersDone"`
	// UsersFailed are the users done with a failure (counted in UsersDone).
	UsersFailed int `json:"usersFailed"`
	// PagesRunning are the page children started and not ended (PageWorkflowID): their
	// users are not in the counts above yet (QueryPageProgress has them).
	PagesRunning []int `json:"pagesRunning,omitempty"`
	DryRun       bool  `json:"dryRun,omitempty"`
	Cancelling   bool  `json:"cancelling,omitempty"`
}

// SyncState is UserSyncWorkflow's input and what it carries across continue-as-new.
type SyncState struct {
	Org      string        `json:"org"`
	Enabled  bool          `json:"enabled"`
	Interval time.Duration `json:"interval"`
	Seq      int           `json:"seq"`
	// Next is the run to start as soon as none is in flight (nil: none requested).
	Next    *RunRequest       `json:"next,omitempty"`
	LastRun *steps.RunSummary `json:"lastRun,omitempty"`
	NextAt  time.Time         `json:"nextAt,omitempty"`
	// Tickets say what became of the latest run requests (SignalRun), newest last.
	Tickets []RunTicket `json:"tickets,omitempty"`
	// Watch: while sync is on, a change in the directory starts a sync at once (watch
	// mode, WatchDirectory); WatchMark is the directory's change mark the last watch saw.
	Watch     bool   `json:"watch,omitempty"`
	WatchMark string `json:"watchMark,omitempty"`
}

// RunRequest is a requested run not started yet.
type RunRequest struct {
	Kind               string        `json:"kind"`
	Retry              *vocab.Filter `json:"retry,omitempty"`
	ApproveSuspensions bool          `json:"approveSuspensions,omitempty"`
	ApprovedHeld       string        `json:"approvedHeld,omitempty"` // RunInput.ApprovedHeld
	Actor              string        `json:"actor,omitempty"`
	// Requests are the run requests (SignalRun, RunSignal.Request) this run answers. A run
	// that answers one starts even while user sync is off.
	Requests []string `json:"requests,omitempty"`
	// RunID, when set, is the ID the run will have: given out by an accepted update before
	// the run starts (a run requested by signals alone is named when it starts).
	RunID string `json:"runId,omitempty"`
}

// maxTickets bounds the run tickets the org workflow keeps.
const maxTickets = 20

// RunTicket says what became of a run request (SignalRun): the run that answers it, once
// started, or why none will (Dropped).
type RunTicket struct {
	Request string `json:"request"`
	RunID   string `json:"runId,omitempty"`
	Kind    string `json:"kind,omitempty"` // of that run
	Dropped string `json:"dropped,omitempty"`
}

// Signal payloads.
type (
	// SwitchSignal is the payload of enable and disable. Interval (enable only) changes the
	// schedule; it is at least MinInterval. In JSON it is a number of nanoseconds or a Go
	// duration string ("1h", "15m"). The workflow rejects (and records) a payload with an
	// unknown member or a bad value rather than act on it.
	SwitchSignal struct {
		Actor    string        `json:"actor,omitempty"`
		Interval time.Duration `json:"interval,omitempty"`
		// Watch (enable only) turns watch mode on or off; absent keeps it as it is.
		Watch *bool `json:"watch,omitempty"`
	}
	// RetrySignal re-attempts failed users: all, or those matching the filter, whose Type is
	// empty or one of vocab.FailureTypes.
	RetrySignal struct {
		Actor  string       `json:"actor,omitempty"`
		Filter vocab.Filter `json:"filter"`
	}
	// ActorSignal is the payload of sync-now.
	ActorSignal struct {
		Actor string `json:"actor,omitempty"`
	}
	// ApproveSignal is the payload of approve-suspensions. It names the held set it approves,
	// as `starter failures --type suspension_held` shows it: Held users, whose
	// vocab.HeldDigest is Digest. The approval is refused when the held set is another.
	ApproveSignal struct {
		Actor  string `json:"actor,omitempty"`
		Held   int    `json:"held"`
		Digest string `json:"digest,omitempty"`
	}
	// RunSignal asks for one sync (`starter run`), started by the org workflow as its next
	// run, whether user sync is on or off. Request, chosen by the sender (at most
	// MaxRequestLen characters), names the request in the status' tickets, where the sender
	// finds the run that answers it.
	RunSignal struct {
		Actor   string `json:"actor,omitempty"`
		Request string `json:"request,omitempty"`
	}
)

// MaxRequestLen bounds RunSignal.Request.
const MaxRequestLen = 64

// Status answers the status query.
type Status struct {
	Org        string            `json:"org"`
	Enabled    bool              `json:"enabled"`
	Interval   time.Duration     `json:"interval"`
	NextAt     *time.Time        `json:"nextAt,omitempty"`
	CurrentRun *Progress         `json:"currentRun,omitempty"`
	Queued     *RunRequest       `json:"queued,omitempty"`
	LastRun    *steps.RunSummary `json:"lastRun,omitempty"`
	Runs       int               `json:"runs"`
	Watch      bool              `json:"watch,omitempty"` // watch mode is on (SyncState.Watch)
	// Tickets say what became of the latest run requests (SignalRun), newest last.
	Tickets []RunTicket `json:"tickets,omitempty"`
}

// DefaultInterval is the schedule when none is set; MinInterval is the shortest one enable takes.
const (
	DefaultInterval = 15 * time.Minute
	MinInterval     = 30 * time.Second
)

// Outcomes of an accepted action (ActionResult.Outcome).
const (
	OutcomeStarted = "started" // the run it asked for starts now
	OutcomeQueued  = "queued"  // the run it asked for starts when the running one ends
	OutcomeNoOp    = "no-op"   // nothing to do (enable while on: only the interval may change)
	OutcomeOff     = "off"     // disable: user sync is off
)

// ActionResult answers an accepted update of the org workflow.
type ActionResult struct {
	Outcome string `json:"outcome"`
	// RunID is the run started or queued (for disable: the run it cancelled, if any).
	RunID string `json:"runId,omitempty"`
	// Behind is the running sync a queued run waits for.
	Behind   string `json:"behind,omitempty"`
	Interval string `json:"interval,omitempty"` // the schedule, as a Go duration
	Watch    bool   `json:"watch,omitempty"`    // enable: watch mode is on
	Message  string `json:"message,omitempty"`
}

// Rejection is the detail of an update rejected for its payload or the organization's state:
// the offending field and its value (left empty when it may be personal data) and why.
type Rejection struct {
	Field  string `json:"field,omitempty"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason"`
}

// Error types of a rejected update (temporal.ApplicationError.Type(), with a Rejection as its
// details). ErrActionInvalid comes from a validator, which cannot write to the database: the
// sender records the rejection in the history. ErrActionRefused comes from the handler,
// after the workflow recorded it.
const (
	ErrActionInvalid = "UsersyncActionInvalid"
	ErrActionRefused = "UsersyncActionRefused"
)

// UnmarshalJSON takes the interval as a Go duration string ("1h", as one types it when
// starting the workflow from the UI) or a number of nanoseconds (as the workflows write it).
func (s *SyncState) UnmarshalJSON(b []byte) error {
	type plain SyncState // without this method
	var aux struct {
		plain
		Interval json.RawMessage `json:"interval"` // shadows plain's
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	d, bad := parseInterval(aux.Interval, false)
	if bad != nil {
		return bad
	}
	*s = SyncState(aux.plain)
	s.Interval = d
	return nil
}
