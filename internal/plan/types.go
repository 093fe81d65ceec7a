// Package plan turns a directory snapshot, the rules and the last applied state into the
// per-user work of one sync: what to create, change or suspend, who gets the last seats,
// and which users fail before provisioning. It owns every decision of a sync: Plan decides
// in memory; Stream makes the same decisions over a Store that only selects, streams and
// writes (its only I/O, through that interface). No Temporal.
package plan

import (
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/vocab"
)

// Mapping copies one directory attribute to a target attribute. Target is
// "enterprise:<employeeNumber|costCenter|division|department>" or "custom:<name>".
type Mapping struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Desired is the complete state one account should have in the target.
// Its Hash identifies it: equal hashes mean nothing to send.
type Desired struct {
	ExternalID       string            `json:"externalId"`
	UserName         string            `json:"userName"`
	Email            string            `json:"email"`
	GivenName        string            `json:"givenName,omitempty"`
	FamilyName       string            `json:"familyName,omitempty"`
	DisplayName      string            `json:"displayName,omitempty"`
	Active           bool              `json:"active"`
	Role             string            `json:"role,omitempty"`
	Products         []string          `json:"products,omitempty"`
	UserGroup        string            `json:"userGroup,omitempty"`
	DeviceGroups     []string          `json:"deviceGroups,omitempty"`
	SettingsTemplate string            `json:"settingsTemplate,omitempty"`
	Enterprise       map[string]string `json:"enterprise,omitempty"`
	Custom           map[string]string `json:"custom,omitempty"`
}

// Applied is what the last successful provisioning wrote for one linked account.
type Applied struct {
	ExternalID string  `json:"externalId"`
	ScimID     string  `json:"scimId"`
	State      Desired `json:"state"`
}

// Action is what a sync does for one user.
type Action string

const (
	Create  Action = "create"  // not linked yet: create (or find by externalId) in the target
	Update  Action = "update"  // linked and different: PATCH only what changed (also reactivation)
	Suspend Action = "suspend" // linked, active and out of scope: active=false, access removed
	Fail    Action = "fail"    // decided failure before provisioning (see Item.Failure)
)

// Item is the work for one user in one sync.
type Item struct {
	ExternalID string         `json:"externalId"`
	UserName   string         `json:"userName"`
	Action     Action         `json:"action"`
	Desired    Desired        `json:"desired"`
	Changed    []string       `json:"changed,omitempty"` // Desired field names that differ from Applied (json names)
	Failure    *vocab.Failure `json:"failure,omitempty"` // set when Action == Fail
	// NewSeats are the products whose seats this user takes in this sync (not held before).
	NewSeats []string `json:"newSeats,omitempty"`
	// ReleaseSeats are products whose seats this user gives back (suspension or products removed).
	ReleaseSeats []string `json:"releaseSeats,omitempty"`
}

// Input is everything a plan needs.
type Input struct {
	Users    []directory.User
	Rules    []rules.Rule
	Mappings []Mapping
	// ValidatedDomains are lower-case email domains.
	ValidatedDomains map[string]bool
	// Applied is the last applied state of each linked account, by externalId.
	Applied map[string]Applied
	// Failed are the users with a current failure, by externalId. They are always re-planned.
	Failed map[string]vocab.Failure
	// Reconcile are the users whose last write's outcome is unknown (an open write intent), by
	// externalId, with the userName that write sent: the target may hold an account for
	// them, or changes to it, that Applied does not show. The provisioning step reads the
	// target for them first.
	Reconcile map[string]string
	// Seats is the seat count per product; Held the externalIds holding a seat, per product.
	Seats map[string]int
	Held  map[string]map[string]bool
	// Retry, when set, restricts the work to currently failed users matching it.
	Retry *vocab.Filter
	// ApproveSuspensions releases suspensions held by the safety threshold: those whose
	// vocab.HeldDigest is ApprovedHeld (when set), the set the admin approved.
	ApproveSuspensions bool
	ApprovedHeld       string
	// PreviousSnapshotSize is the in-scope user count of the last good read (0 if none).
	PreviousSnapshotSize int
	// SuspendThresholdPercent and SuspendThresholdMax bound how many suspensions one sync
	// may apply before it holds them all as suspension_held (defaults 10 and 500).
	SuspendThresholdPercent int
	SuspendThresholdMax     int
	// Delta: the read holds only the users a delta run's directory changes touched (Stream
	// only). Every other user was settled by the last clean run and nothing it depends on
	// changed since: in scope exactly when its linked account is active (Store.Untouched),
	// unchanged, and not a leaver.
	Delta bool
}

// Result is the plan of one sync.
type Result struct {
	Items     []Item // deterministic order
	Unchanged int    // in-scope users with nothing to do
	InScope   int    // users matched by at least one rule and enabled
	// SuspensionsHeld is true when the safety threshold held every suspension of this sync.
	SuspensionsHeld bool
	// Warnings for the run summary (e.g. "directory read returned 0 users: no suspensions").
	Warnings []string
	// Resolved are the externalIds (sorted) of users with a current failure who are now out
	// of scope with nothing to do (not linked, or linked and already inactive): their
	// failure should be cleared.
	Resolved []string
}
