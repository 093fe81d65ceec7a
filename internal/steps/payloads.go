package steps

import (
	"time"

	"github.com/usersync/usersync/internal/vocab"
)

// RunRef names one sync run. Workflow payloads carry IDs and counts, never user records.
type RunRef struct {
	Org   string `json:"org"`
	RunID string `json:"runId"`
}

// SnapshotInput starts a run's directory read.
type SnapshotInput struct {
	RunRef
	Kind   string `json:"kind"` // vocab.KindScheduled, KindManual, KindRetry
	DryRun bool   `json:"dryRun"`
	// MayStandStill: the run may end without a plan when nothing it depends on changed
	// since the last clean run (SnapshotResult.Unchanged). The workflow sets it for a
	// run that is neither dry, a retry nor an approval of held suspensions.
	MayStandStill bool `json:"mayStandStill,omitempty"`
}

// SnapshotResult counts what the directory read found.
type SnapshotResult struct {
	Users         int      `json:"users"`
	InScope       int      `json:"inScope"`
	Disabled      int      `json:"disabled"`
	Groups        int      `json:"groups"`
	MissingGroups []string `json:"missingGroups,omitempty"`
	// Skipped counts entries that could not be keyed (no immutable ID), by reason; Invalid
	// the users with a bad value (each fails invalid_user_data); Unreadable those whose
	// disabled flag could not be read (counted as disabled).
	Skipped    map[string]int `json:"skipped,omitempty"`
	Invalid    int            `json:"invalid,omitempty"`
	Unreadable int            `json:"unreadable,omitempty"`
	// Read says how the directory was read when it was read incrementally (nil: a full
	// paged read of the whole directory, as always before).
	Read *DirectoryRead `json:"read,omitempty"`
	// Unchanged is set when nothing the run depends on changed since an earlier clean
	// run: the run has nothing to do and takes no snapshot; the counts above are that
	// run's, carried over.
	Unchanged *Unchanged `json:"unchanged,omitempty"`
	// Delta is set when the snapshot holds only the users the directory's changes touched
	// (a delta run): then InScope, Disabled, Invalid, Unreadable and Skipped count those
	// users only; Users, Groups and MissingGroups count the whole directory.
	Delta *Delta `json:"delta,omitempty"`
}

// Delta describes a delta run's snapshot (activities.DeltaSince).
type Delta struct {
	Since   string `json:"since"`   // the run whose outcome holds for the users not touched
	Touched int    `json:"touched"` // users the changes touched (in the snapshot or not)
}

// Unchanged names the run whose outcome still holds (activities.UnchangedSince).
type Unchanged struct {
	Since string `json:"since"` // the run that last read and planned
	// InScope is that run's plan's in-scope count (the safety threshold's base next time).
	InScope int `json:"inScope"`
}

// Note is the run's one-line account of an unchanged directory.
func (u *Unchanged) Note() string {
	return "directory unchanged since run " + u.Since + ": nothing to do"
}

// DirectoryRead describes an incremental read (directory.SyncStats): the snapshot was
// taken from the organization's mirror after reading what changed.
type DirectoryRead struct {
	// Full: the mirror was replaced by a read of everything; Reason says why ("first
	// read", "scope changed", "mirror incomplete", "scheduled", "cookie refused", on AD
	// "another DC or a restored one (invocationId changed)").
	Full    bool   `json:"full,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Entries int    `json:"entries"`           // entries the directory sent with their attributes
	Deleted int    `json:"deleted,omitempty"` // entries dropped as deleted in the directory
	// Checked: entries the directory named without their attributes to find what changed
	// (AD: the objects changed since the mark).
	Checked int `json:"checked,omitempty"`
}

// PlanInput plans a run from its snapshot.
type PlanInput struct {
	RunRef
	DryRun             bool          `json:"dryRun,omitempty"`
	Retry              *vocab.Filter `json:"retry,omitempty"`
	ApproveSuspensions bool          `json:"approveSuspensions,omitempty"`
	// ApprovedHeld: the digest of the suspensions approved (vocab.HeldDigest), "" for any.
	ApprovedHeld string `json:"approvedHeld,omitempty"`
}

// PlanResult counts the planned work; items are in the store under the run ID.
type PlanResult struct {
	Items           int      `json:"items"`
	Creates         int      `json:"creates"`
	Updates         int      `json:"updates"`
	Suspends        int      `json:"suspends"`
	Fails           int      `json:"fails"`
	Unchanged       int      `json:"unchanged"`
	InScope         int      `json:"inScope"`
	SuspensionsHeld bool     `json:"suspensionsHeld,omitempty"`
	Warnings        []string `json:"warnings,omitempty"`
}

// UserStep names one user's work item in a run.
type UserStep struct {
	RunRef
	Seq int `json:"seq"`
}

// SeatsInput asks for a user's new seats.
type SeatsInput struct {
	UserStep
	ExternalID string   `json:"externalId"`
	Products   []string `json:"products"`
}

// StepResult says whether the user's next step should run.
type StepResult struct {
	Continue bool        `json:"continue"`
	Outcome  UserOutcome `json:"outcome"`
}

// PageRef names the items [From, To) of a run.
type PageRef struct {
	RunRef
	From int `json:"from"`
	To   int `json:"to"`
}

// PageEvaluation is the rule evaluation of a page: who goes on to licenses and provisioning.
// It carries directory IDs and product names only, no personal data.
type PageEvaluation struct {
	Users    []UserPlan     `json:"users"`
	Failures map[string]int `json:"failures,omitempty"` // recorded before provisioning, by type
}

// UserPlan is one user that goes on to the license and SCIM steps.
type UserPlan struct {
	Seq        int      `json:"seq"`
	ExternalID string   `json:"externalId"`
	Seats      []string `json:"seats,omitempty"` // products whose seats the user takes
	// Action is the plan's action (create, update, suspend, ...), for the steps' summaries.
	Action string `json:"action,omitempty"`
}

// UserOutcome is what happened to one user. ExternalID is the directory's opaque ID (no
// personal data) so that ops can find the user in the UI.
type UserOutcome struct {
	Seq         int    `json:"seq"`
	ExternalID  string `json:"externalId"`
	Status      string `json:"status,omitempty"` // vocab.Created, Updated, ...
	FailureType string `json:"failureType,omitempty"`
}

// UserFailureInput records a failure decided by the workflow (retries ran out).
type UserFailureInput struct {
	UserStep
	Failure vocab.Failure `json:"failure"`
}

// GroupsResult counts group membership writes.
type GroupsResult struct {
	Groups  int `json:"groups"`
	Added   int `json:"added"`
	Removed int `json:"removed"`
}

// FinishInput records a run's end.
type FinishInput struct {
	RunRef
	Kind      string         `json:"kind"`
	DryRun    bool           `json:"dryRun"`
	Status    string         `json:"status"` // vocab.RunSucceeded, RunFailed, RunCancelled
	StartedAt time.Time      `json:"startedAt"`
	Directory SnapshotResult `json:"directory"`
	Plan      PlanResult     `json:"plan"`
	Outcomes  map[string]int `json:"outcomes,omitempty"`
	Failures  map[string]int `json:"failures,omitempty"`
	Groups    GroupsResult   `json:"groups"`
	Error     string         `json:"error,omitempty"`
	// FailureType is set when the run stopped as a whole (target_auth, target_unavailable,
	// target_incompatible): one run-level failure instead of one per user.
	FailureType string            `json:"failureType,omitempty"`
	Extra       map[string]string `json:"extra,omitempty"`
}

// RunSummary is the recorded outcome of a run, also returned to the workflow.
type RunSummary struct {
	FinishInput
	InScope    int            `json:"inScope"`
	FinishedAt time.Time      `json:"finishedAt"`
	Banners    []vocab.Banner `json:"banners,omitempty"`
}

// Fan-out defaults (a FanOut field left 0): many small pages in parallel, a few users in
// flight each.
const (
	DefaultPageSize      = 250
	DefaultPageWindow    = 8
	DefaultUsersInFlight = 20
)

// FanOut is the worker's configuration of a run's fan-out, read once per run (the
// RunSettings step).
type FanOut struct {
	// ProvisionQueue is the task queue of the SCIM steps: the rate-limited SCIM queue, or the
	// main queue when the target has no rate limit (then the steps run eagerly, in the worker
	// that schedules them, without a round trip through the server).
	ProvisionQueue string `json:"provisionQueue"`
	PageSize       int    `json:"pageSize,omitempty"`
	PageWindow     int    `json:"pageWindow,omitempty"`
	UsersInFlight  int    `json:"usersInFlight,omitempty"`
}

// TargetCheck is what a run found the target to be (no secret, no personal data).
type TargetCheck struct {
	CustomSchema string `json:"customSchema"`
	Patch        bool   `json:"patch"`
	Filter       bool   `json:"filter"`
	MaxResults   int    `json:"maxResults,omitempty"`
	ETag         bool   `json:"etag,omitempty"`
}

// ActionCheck asks for the checks of an admin action (an update or signal of the org
// workflow) that need the database: the retry filter's product is in the catalog and its user
// is known; the held suspensions an approval names are still the held set.
type ActionCheck struct {
	Org    string        `json:"org"`
	Action string        `json:"action"`
	Retry  *vocab.Filter `json:"retry,omitempty"`
	// Approve names the held set approved: its size and vocab.HeldDigest.
	Approve *HeldSet `json:"approve,omitempty"`
}

// HeldSet names a set of held suspensions.
type HeldSet struct {
	Count  int    `json:"count"`
	Digest string `json:"digest"`
}

// ActionVerdict is CheckAction's answer: empty Reason when the action may go on; else the
// offending field, its value (never personal data) and why.
type ActionVerdict struct {
	Field  string `json:"field,omitempty"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// WatchInput starts watching an organization's directory for a change (WatchDirectory).
type WatchInput struct {
	Org string `json:"org"`
	// Since is the change mark the last watch returned (empty: the directory's current one):
	// a change made while the sync it started ran is seen at once.
	Since string `json:"since,omitempty"`
}

// WatchResult says whether the directory changed. Mark is an opaque change mark (a USN or a
// CSN, no personal data): the next watch's Since.
type WatchResult struct {
	Changed bool   `json:"changed"`
	Changes int    `json:"changes,omitempty"`
	Mark    string `json:"mark,omitempty"`
}
