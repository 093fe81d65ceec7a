package vocab

import "fmt"

// Banner is one line per failure type (and product, for licenses).
type Banner struct {
	Type    string `json:"type"`
	Product string `json:"product,omitempty"`
	Users   int    `json:"users"`
	Advice  string `json:"advice"`
	// RunLevel marks the last sync's failure as a whole (no user count).
	RunLevel bool `json:"runLevel,omitempty"`
}

// RunBanner is the banner of a run-level failure of type typ.
func RunBanner(typ string) Banner {
	return Banner{Type: typ, RunLevel: true, Advice: RunAdvice(typ)}
}

// UserBanner is the banner of users users failed with type typ (and product, for licenses).
func UserBanner(typ, product string, users int) Banner {
	return Banner{Type: typ, Product: product, Users: users, Advice: Advice(typ, product)}
}

// RunAdvice says what an admin can do about a run-level failure: the sync stopped as a
// whole and no user was changed or marked failed for it.
func RunAdvice(typ string) string {
	switch typ {
	case TargetAuth:
		return "the target refused our credentials: check the token (SCIM_TOKEN / --scim-token-file); the next sync tries again"
	case TargetUnavailable:
		return "the target did not answer for the whole sync; nothing was changed: check it, the next sync tries again"
	case OrgUnknown:
		return "the organization has no settings (deleted?): starter orgs create, or disable its sync"
	case TargetIncompatible:
		return "the target cannot take what this organization writes (see the last sync's error): fix its schema or `starter target set`, then sync"
	}
	return "the last sync stopped: see its error (starter history --type sync)"
}

// Advice says what an admin can do about a failure type of a user.
func Advice(typ, product string) string {
	switch typ {
	case OutOfLicenses:
		return fmt.Sprintf("buy seats of %s (starter licenses set %s <n>), then starter retry --type out_of_licenses", product, product)
	case ExistingAccount:
		return "an unlinked account with this userName exists in the target: adopt it (starter adopt <userName>), or remove or rename it and retry"
	case DomainNotValidated:
		return "validate the email domain (starter domains validate <domain>), then starter retry --type domain_not_validated"
	case InvalidUserData:
		return "fix the attribute named in the message in the directory; the next sync picks it up"
	case TargetRejected:
		return "the target refused the change; see details, fix, then retry"
	case TargetUnavailable:
		return "the target did not answer after retries; check it, then starter retry --type target_unavailable"
	case SuspensionHeld:
		return "more suspensions than the safety threshold: check the directory, then approve (starter failures --type suspension_held, then starter approve-suspensions --held N --digest D)"
	}
	return ""
}
