package activities

import (
	"context"
	"time"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// The store as the steps use it, one interface per concern; *store.Store implements them
// all (Store). Each lists only the methods the steps call.

// ConfigStore is the organization's configuration as a run reads it: rules, mappings,
// domains, and the in-scope count of the last good read (the safety threshold's reference).
type ConfigStore interface {
	Rules(ctx context.Context, org string) ([]rules.Rule, error)
	RefreshRuleGroups(ctx context.Context, org string, moves []store.RuleGroupMove) ([]rules.Rule, error)
	Mappings(ctx context.Context, org string) ([]plan.Mapping, error)
	Domains(ctx context.Context, org string) ([]store.Domain, error)
	LastGoodSnapshotSize(ctx context.Context, org string) (int, error)
}

// RunStore records a run (begin, finish with its banners) and holds its directory snapshot
// (SnapshotDirectory, DiscoverTarget, FinishRun).
type RunStore interface {
	// The run's snapshot is written by the attempt BeginRun returns, and by no earlier one.
	BeginRun(ctx context.Context, org, runID, kind string, dryRun bool) (attempt int64, err error)
	CheckAttempt(ctx context.Context, runID string, attempt int64) error
	WriteSnapshot(ctx context.Context, runID string, attempt int64, users []directory.User) error
	ResetSnapshot(ctx context.Context, runID string, attempt int64) error
	MembershipIndex(runID string) directory.MembershipIndex
	LockMirror(ctx context.Context, org string, wait func()) (_ directory.MirrorStore, release func(), err error)
	AnalyzeSnapshot(ctx context.Context) error
	MarkDelta(ctx context.Context, runID string, attempt int64, touched []string) error
	BannersWith(ctx context.Context, org, runFailure string) ([]vocab.Banner, error)
	FinishRun(ctx context.Context, runID, status string, failure vocab.Failure, inScope int, summary any) error
	// What a run stands on, and what the next one compares (unchanged.go).
	SetRunBasis(ctx context.Context, runID string, attempt int64, inputs string, nextExpiry *time.Time, basis string) error
	MarkRunClean(ctx context.Context, runID string) error
	PreviousRun(ctx context.Context, org, runID string) (store.RunBasis, bool, error)
	PendingWork(ctx context.Context, org string) (failures, intents int, err error)
	Licenses(ctx context.Context, org string) ([]store.License, error)
	OrgVersion(ctx context.Context, org string) (int64, error)
	TargetExtension(ctx context.Context, org string) (scim.Extension, error)
}

// PlanStore is the storage of a run's plan (PlanRun): its work table, the streams plan.Stream
// reads, and the failures the plan resolved.
type PlanStore interface {
	DeleteWork(ctx context.Context, runID string) error
	Planning(org, runID string) *store.RunPlanning
	DeltaSnapshot(ctx context.Context, runID string) (bool, error)
	ClearFailures(ctx context.Context, org string, externalIDs []string) error
}

// UserStore is what the per-user steps (EvaluatePage, CheckLicenses, ProvisionUser,
// ProbeTarget, RecordUserFailure) read and write: the run's work items, seats, write
// intents, the applied state of linked accounts, failures and adoption approvals.
type UserStore interface {
	WorkItem(ctx context.Context, runID string, seq int) (plan.Item, error)
	WorkItemRange(ctx context.Context, runID string, from, to int) ([]plan.Item, error)
	UserWork(ctx context.Context, org, runID string, seq int) (store.UserWork, error)
	BeginUserWrite(ctx context.Context, org, runID string, seq int) (store.UserWork, error)
	BeginHeldWrite(ctx context.Context, org, runID string, seq int, h store.Hold) (store.UserWork, error)
	ReleaseHold(ctx context.Context, org, externalID, by string) error
	CloseLocal(ctx context.Context, runID string, seq int) error
	ReserveSeats(ctx context.Context, org, externalID string, products []string) (short string, seats int, err error)
	ReleaseUnsent(ctx context.Context, org, externalID string, products []string) error
	OpenIntent(ctx context.Context, org, externalID, userName, runID, action string) error
	OpenIntentsAmong(ctx context.Context, org string, externalIDs []string) (map[string]bool, error)
	SettleUnsent(ctx context.Context, org, externalID string) error
	SaveProvisioned(ctx context.Context, org, scimID string, d plan.Desired, runID, outcome string) error
	SaveLinked(ctx context.Context, org, scimID string, d plan.Desired, keep []string, runID, outcome string) error
	RecordFailure(ctx context.Context, org, runID, externalID, userName string, f vocab.Failure) error
	AdoptionApproved(ctx context.Context, org, externalID, userName string) (bool, error)
	LinkedTo(ctx context.Context, org, scimID string) (string, error)
}

// GroupStore is the group step's (SyncGroups): the membership changes to write and the cache
// of the target's group IDs.
type GroupStore interface {
	GroupDeltas(ctx context.Context, org, runID string, chunk int, fn func(store.GroupDelta) error) error
	SaveGroupMembers(ctx context.Context, org, name string, add, remove []string) error
	ScimGroupID(ctx context.Context, org, name string) (string, error)
	SaveScimGroupID(ctx context.Context, org, name, id string) error
	ForgetScimGroup(ctx context.Context, org, name string) error
}

// TargetStore is the discovery step's (DiscoverTarget): the configured extension, the
// target's profile, and the extension the run writes.
type TargetStore interface {
	RecordRun(ctx context.Context, org, runID, kind string, dryRun bool) error
	TargetExtension(ctx context.Context, org string) (scim.Extension, error)
	SaveTargetProfile(ctx context.Context, org, runID string, e scim.Extension, d *scim.Discovery) error
	SetRunExtension(ctx context.Context, runID string, e scim.Extension) error
}

// HistoryStore appends to the administrative history (RecordEvent, FinishRun).
type HistoryStore interface {
	AddEvent(ctx context.Context, e vocab.Event) error
}

// ActionStore is what CheckAction reads: the catalog, the known users and the held set.
type ActionStore interface {
	Catalog(ctx context.Context, org string) (rules.Catalog, error)
	KnownUser(ctx context.Context, org, user string) (bool, error)
	HeldSet(ctx context.Context, org string) (count int, digest string, err error)
}

// Store is every store the steps use.
type Store interface {
	ActionStore
	ConfigStore
	RunStore
	PlanStore
	UserStore
	GroupStore
	TargetStore
	HistoryStore
}

var _ Store = (*store.Store)(nil)

// PlanInputStore is what LoadPlanInput reads: the configuration and every user's failure,
// seats, open write and applied state.
type PlanInputStore interface {
	ConfigStore
	FailedUsers(ctx context.Context, org string) (map[string]vocab.Failure, error)
	SeatState(ctx context.Context, org string) (map[string]int, map[string]map[string]bool, error)
	OpenIntents(ctx context.Context, org string) (map[string]string, error)
	AppliedStates(ctx context.Context, org string) (map[string]plan.Applied, error)
}

var _ PlanInputStore = (*store.Store)(nil)
