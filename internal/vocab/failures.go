package vocab

import "slices"

// Failure types of one user (spec section 9).
const (
	OutOfLicenses      = "out_of_licenses"
	ExistingAccount    = "existing_account"
	DomainNotValidated = "domain_not_validated"
	InvalidUserData    = "invalid_user_data"
	TargetRejected     = "target_rejected"
	TargetUnavailable  = "target_unavailable" // also run-level: the target did not answer at all
	SuspensionHeld     = "suspension_held"
)

// Run-level failure types: the sync stopped as a whole, no user is failed for it (spec 9).
// TargetUnavailable is one too when the target answered no request of the run.
const (
	TargetAuth         = "target_auth"         // 401, or 403 to a read
	TargetIncompatible = "target_incompatible" // no PATCH, or the custom extension or an attribute is not declared
	OrgUnknown         = "org_unknown"         // the organization has no settings (deleted, or never created)
)

// FailureTypes lists every failure type of a user, for validation of CLI input and banners.
var FailureTypes = []string{OutOfLicenses, ExistingAccount, DomainNotValidated, InvalidUserData,
	TargetRejected, TargetUnavailable, SuspensionHeld}

// IsFailureType reports whether typ is a failure type of a user.
func IsFailureType(typ string) bool { return slices.Contains(FailureTypes, typ) }

// IsRunLevel reports whether typ stops a run as a whole: refused credentials, an
// incompatible target, or a target that answered nothing.
func IsRunLevel(typ string) bool {
	switch typ {
	case TargetAuth, TargetIncompatible, TargetUnavailable, OrgUnknown:
		return true
	}
	return false
}

// Failure is a per-user business failure.
type Failure struct {
	Type    string `json:"type"`
	Product string `json:"product,omitempty"` // for out_of_licenses
	Message string `json:"message"`
}

// Filter narrows failures (and a retry) to some failed users. Empty fields match everything.
type Filter struct {
	Type    string `json:"type,omitempty"`
	Product string `json:"product,omitempty"`
	User    string `json:"user,omitempty"` // userName or externalId
}

// Retryable error types of one SCIM step, which the page workflow answers (not failures).
const (
	// RequestPaced: the step was sent away by the target's shared request pace before sending
	// anything; its NextRetryDelay is the user's turn.
	RequestPaced = "request_paced"
	// WriteHeld: an earlier attempt for the user may still be writing (a local attempt that
	// outlived its workflow task holds the user's write); its NextRetryDelay is the hold's end.
	WriteHeld = "write_held"
)
