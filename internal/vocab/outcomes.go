package vocab

// Outcomes of one user in a run (the keys of a run's outcome counts).
const (
	Created   = "created"
	Updated   = "updated"
	Suspended = "suspended"
	Adopted   = "adopted" // an unlinked account with its userName, linked on an admin's approval
	Failed    = "failed"  // a failure was recorded (its type says which)
	// Reconciled is a user who left scope after a write whose outcome was unknown, and whose
	// account the target turned out not to hold: nothing to suspend, its seats went back.
	Reconciled = "reconciled"
	// Errored is a user whose steps could not complete (a store error, the run cancelled): it
	// keeps its previous state and the next sync plans it again.
	Errored = "error"
)
