// Package activities holds the I/O steps of a sync. The Activities struct holds the
// dependencies, each as the narrow interface the steps use (Directory, Target, and the store
// by concern in stores.go); each method is a thin adapter over internal/ packages. The steps'
// names and payloads are in package steps, which the workflows use.
package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/metrics"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/internal/watch"
)

// Directory is the read side of the directory (a fake may inject faults in tests).
type Directory interface {
	// SnapshotWith reads the users of groupDNs; idx holds group memberships meanwhile (the
	// store's, so that memory does not grow with the directory).
	SnapshotWith(ctx context.Context, idx directory.MembershipIndex, groupDNs, extraAttrs []string, batchSize int,
		emit func([]directory.User) error) (directory.Stats, error)
	Close() error
}

// IncrementalDirectory is a Directory that can read only what changed into a mirror and
// take the snapshot from it (*directory.Reader).
type IncrementalDirectory interface {
	SupportsIncremental() bool
	SyncMirror(ctx context.Context, m directory.MirrorStore, extraAttrs []string, fullEvery time.Duration) (directory.SyncStats, error)
	SnapshotFromMirror(ctx context.Context, m directory.MirrorStore, idx directory.MembershipIndex, groupDNs, extraAttrs []string,
		batchSize int, emit func([]directory.User) error) (directory.Stats, error)
	// SnapshotChanges is SnapshotFromMirror for the users the read's changes touched (a
	// delta run); directory.ErrTooManyChanges: take SnapshotFromMirror.
	SnapshotChanges(ctx context.Context, m directory.MirrorStore, groupDNs, extraAttrs []string,
		batchSize int, ch *directory.Changes, emit func([]directory.User) error) (_ directory.Stats, touched []string, err error)
}

// Target is the SCIM service provider (*scim.Client).
type Target interface {
	Discover(ctx context.Context) (*scim.Discovery, error)
	Ping(ctx context.Context) error
	CreateUser(ctx context.Context, ext scim.Extension, d plan.Desired) (*scim.User, error) // on 409, the account with this externalId if any
	FindUserByExternalID(ctx context.Context, ext scim.Extension, externalID string) (*scim.User, error)
	FindUserByUserName(ctx context.Context, ext scim.Extension, userName string) (*scim.User, error)
	UpdateUser(ctx context.Context, ext scim.Extension, id string, from, to plan.Desired) error
	FindGroup(ctx context.Context, displayName string) (*scim.Group, error)
	CreateGroup(ctx context.Context, displayName string) (*scim.Group, error)
	PatchGroupMembers(ctx context.Context, groupID string, add, remove []string) error
}

// Org is one organization's connections: its directory, its target and the safety
// thresholds on its suspensions.
type Org struct {
	// Dial opens a connection to the organization's directory.
	Dial   func(ctx context.Context) (Directory, error)
	Target Target
	// SuspendThresholdPercent and SuspendThresholdMax bound the suspensions one sync applies.
	SuspendThresholdPercent int
	SuspendThresholdMax     int
	// Paced: the organization's requests to its target keep a rate (its SCIM steps then run
	// on the paced queue, see Activities.UnpacedQueue).
	Paced bool
	// Rate is the pace's requests per second (0: not paced).
	Rate float64
	// Incremental: read only what changed in the directory, where it supports that
	// (IncrementalDirectory), into the organization's mirror, and read everything every
	// FullReadEvery (0: directory.DefaultFullReadEvery). Otherwise every run reads it all.
	Incremental   bool
	FullReadEvery time.Duration
	// Watch opens a connection that reads the directory's change mark (watch mode; nil:
	// this organization's directory cannot be watched).
	Watch func(ctx context.Context) (ChangeMarker, error)
}

// Orgs resolves an organization's connections from the organization named in a step's input
// (the worker's: from the settings in PostgreSQL). An organization without settings is
// ErrUnknownOrg.
type Orgs interface {
	Org(ctx context.Context, org string) (*Org, error)
}

// ErrUnknownOrg is the error of Orgs for an organization without settings.
var ErrUnknownOrg = errors.New("organization has no settings")

// Activities holds what the steps need. Secrets stay inside these dependencies: they never
// enter workflow inputs or results.
type Activities struct {
	// Store is the PostgreSQL store (*store.Store), as the steps use it (stores.go).
	Store Store
	// Orgs gives every step the connections of the organization in its input, and only those.
	Orgs Orgs
	// SnapshotBatch is how many directory users are written to the store at once.
	SnapshotBatch int
	// Settings shape every run's fan-out (zero values: the workflow defaults). Its
	// ProvisionQueue is the queue of the SCIM steps of organizations whose target has a rate.
	Settings steps.FanOut
	// UnpacedQueue, when set, is the queue of the SCIM steps of an organization whose target
	// has no rate: the workflows' own queue, where the steps run eagerly in the worker that
	// schedules them (no round trip through the server).
	UnpacedQueue string
	// Metrics counts finished runs and their users (nil: none).
	Metrics *metrics.Metrics
	// WatchTiming shapes watch mode's polling and debounce (zero: the defaults).
	WatchTiming watch.Timing
}

// RunSettings returns the fan-out of one run of the organization: the worker's settings,
// with the SCIM steps' queue chosen by whether the organization's target is paced.
func (a *Activities) RunSettings(ctx context.Context, in steps.RunRef) (steps.FanOut, error) {
	fan := a.Settings
	if a.UnpacedQueue == "" {
		return fan, nil
	}
	o, err := a.org(ctx, in.Org)
	if err != nil {
		return fan, err
	}
	if !o.Paced {
		fan.ProvisionQueue = a.UnpacedQueue
	}
	if o.Rate > 0 {
		fan.PageWindow, fan.UsersInFlight = pacedWindow(fan.PageWindow, fan.UsersInFlight, o.Rate)
	}
	return fan, nil
}

// pacedWindow is the pages and users per page in flight of an organization paced at rate:
// no more users than its pace serves within paceWithin. The rest of a full window (8 x 20)
// would only be sent away by the pace and come back, an activity attempt each on the
// Temporal server every organization shares, and hold SCIM slots meanwhile: a slow target's
// organization gets the window its pace can use (issue 10). 0 is the workflows' default.
func pacedWindow(pages, users int, rate float64) (int, int) {
	pages = cmp.Or(pages, steps.DefaultPageWindow)
	users = cmp.Or(users, steps.DefaultUsersInFlight)
	serves := max(1, int(rate*paceWithin.Seconds()))
	if pages*users <= serves {
		return pages, users
	}
	pages = min(pages, serves)
	return pages, max(1, serves/pages)
}

// org returns the connections of org. No settings is a permanent error for the step: the
// run stops with it (the organization was deleted, or never created).
func (a *Activities) org(ctx context.Context, org string) (*Org, error) {
	if a.Orgs == nil {
		return nil, temporal.NewNonRetryableApplicationError("this worker serves no organization", vocab.OrgUnknown, nil)
	}
	o, err := a.Orgs.Org(ctx, org)
	if errors.Is(err, ErrUnknownOrg) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"organization %q has no settings: create them with starter orgs create %s", org, org), vocab.OrgUnknown, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("organization %q: %w", org, err)
	}
	return o, nil
}

// Single serves the connections o to organization name and refuses every other organization
// (tests, the benchmark, a worker for one organization).
func Single(name string, o Org) Orgs { return single{name: name, org: &o} }

type single struct {
	name string
	org  *Org
}

func (s single) Org(_ context.Context, org string) (*Org, error) {
	if org != s.name {
		return nil, ErrUnknownOrg
	}
	return s.org, nil
}

// LDAP returns a Dial for a real directory.
func LDAP(cfg directory.Config) func(ctx context.Context) (Directory, error) {
	return func(ctx context.Context) (Directory, error) {
		r, err := directory.Dial(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// LDAPWatch returns a Watch for a real directory.
func LDAPWatch(cfg directory.Config) func(ctx context.Context) (ChangeMarker, error) {
	return func(context.Context) (ChangeMarker, error) { return watch.Open(cfg), nil }
}
