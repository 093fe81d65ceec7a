// Package activities holds the I/O steps of a sync. The Activities struct holds the
// dependencies, each as the narrow interface the steps use (Directory, Target, and the store
// by concern in stores.go); each method is a thin adapter over internal/ packages. The steps'
// names and payloads are in package steps, which the workflows use.
package activities

import (
	"context"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
)

// Directory is the read side of the directory (a fake may inject faults in tests).
type Directory interface {
	// SnapshotWith reads the users of groupDNs; idx holds group memberships meanwhile (the
	// store's, so that memory does not grow with the directory).
	SnapshotWith(ctx context.Context, idx directory.MembershipIndex, groupDNs, extraAttrs []string, batchSize int,
		emit func([]directory.User) error) (directory.Stats, error)
	Close() error
}

// Target is the SCIM service provider (*scim.Client).
type Target interface {
	Discover(ctx context.Context) (*scim.Discovery, error)
	Ping(ctx context.Context) error
	CreateUser(ctx context.Context, ext scim.Extension, d plan.Desired) (*scim.User, error) // on 409, the account with this externalId if any
	FindUserByUserName(ctx context.Context, ext scim.Extension, userName string) (*scim.User, error)
	UpdateUser(ctx context.Context, ext scim.Extension, id string, from, to plan.Desired) error
	FindGroup(ctx context.Context, displayName string) (*scim.Group, error)
	CreateGroup(ctx context.Context, displayName string) (*scim.Group, error)
	PatchGroupMembers(ctx context.Context, groupID string, add, remove []string) error
}

// Activities holds what the steps need. Secrets stay inside these dependencies: they never
// enter workflow inputs or results.
type Activities struct {
	// Store is the PostgreSQL store (*store.Store), as the steps use it (stores.go).
	Store Store
	// DialDirectory opens a directory connection with the worker's LDAP configuration.
	DialDirectory func(ctx context.Context) (Directory, error)
	Target        Target
	// SnapshotBatch is how many directory users are written to the store at once.
	SnapshotBatch int
	// SuspendThresholdPercent and SuspendThresholdMax bound the suspensions one sync applies.
	SuspendThresholdPercent int
	SuspendThresholdMax     int
	// Settings shape every run's fan-out (zero values: the workflow defaults).
	Settings steps.FanOut
}

// RunSettings returns the worker's fan-out settings.
func (a *Activities) RunSettings(context.Context) (steps.FanOut, error) { return a.Settings, nil }

// LDAP returns a DialDirectory for a real directory.
func LDAP(cfg directory.Config) func(ctx context.Context) (Directory, error) {
	return func(ctx context.Context) (Directory, error) {
		r, err := directory.Dial(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}
