package steps

// Step (activity) names: the method names of internal/engine.Steps, which
// *activities.Activities and the benchmark's stand-in implement. Workflows pass these to
// workflow.ExecuteActivity and ExecuteLocalActivity.
const (
	RunSettings       = "RunSettings"       // RunRef -> FanOut
	DiscoverTarget    = "DiscoverTarget"    // SnapshotInput -> TargetCheck
	SnapshotDirectory = "SnapshotDirectory" // SnapshotInput -> SnapshotResult
	PlanRun           = "PlanRun"           // PlanInput -> PlanResult
	EvaluatePage      = "EvaluatePage"      // PageRef -> PageEvaluation
	CheckLicenses     = "CheckLicenses"     // SeatsInput -> StepResult
	ProvisionUser     = "ProvisionUser"     // UserStep -> UserOutcome
	ProbeTarget       = "ProbeTarget"       // UserStep -> bool (down)
	RecordUserFailure = "RecordUserFailure" // UserFailureInput -> UserOutcome
	// ReleaseUnsentSeats gives back the seats reserved for a user whose write never started.
	ReleaseUnsentSeats = "ReleaseUnsentSeats" // UserStep
	SyncGroups         = "SyncGroups"         // RunRef -> GroupsResult
	FinishRun          = "FinishRun"          // FinishInput -> RunSummary
	RecordEvent        = "RecordEvent"        // vocab.Event
	CheckAction        = "CheckAction"        // ActionCheck -> ActionVerdict
	// WatchDirectory runs until the organization's directory changed (watch mode).
	WatchDirectory = "WatchDirectory" // WatchInput -> WatchResult
)

// Names lists every step name.
func Names() []string {
	return []string{RunSettings, DiscoverTarget, SnapshotDirectory, PlanRun, EvaluatePage, CheckLicenses,
		ProvisionUser, ProbeTarget, RecordUserFailure, ReleaseUnsentSeats, SyncGroups, FinishRun, RecordEvent, CheckAction, WatchDirectory}
}
