package vocab

import "time"

// History event types.
const (
	EventSync     = "sync"
	EventFailure  = "failure"
	EventRetry    = "retry"
	EventSwitch   = "switch" // enable / disable
	EventRule     = "rule"
	EventSetting  = "setting"
	EventLicense  = "license"
	EventDomain   = "domain"
	EventMapping  = "mapping"
	EventAdoption = "adoption" // an unlinked target account adopted (approve, adopted)
)

// EventTypes lists every history event type (the CLI's history --type accepts them).
var EventTypes = []string{EventSync, EventFailure, EventRetry, EventSwitch, EventRule,
	EventSetting, EventLicense, EventDomain, EventMapping, EventAdoption}

// Event is one entry of the administrative activity history.
type Event struct {
	ID      int64          `json:"id"`
	Org     string         `json:"org"`
	At      time.Time      `json:"at"`
	Actor   string         `json:"actor"`
	Type    string         `json:"type"`
	Action  string         `json:"action"`
	Status  string         `json:"status"`
	Details map[string]any `json:"details,omitempty"`
	// DBRole is the database role that wrote the row (read back only; set by the database).
	DBRole string `json:"dbRole,omitempty"`
}
