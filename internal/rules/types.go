// Package rules resolves what a directory user gets from the admin's prioritized rules.
// It is pure: no I/O, no Temporal.
package rules

// Rule maps one directory group to what its members get. Priority 1 is the highest.
type Rule struct {
	ID       int64  `json:"id"`
	Priority int    `json:"priority"`
	GroupDN  string `json:"groupDn"` // normalized with NormalizeDN
	// GroupID is the group's immutable ID (objectGUID on AD, entryUUID on OpenLDAP), ""
	// until known. A sync finds the group by it first, so a group renamed or moved keeps
	// its rule, and then stores the group's current DN in GroupDN.
	GroupID          string            `json:"groupId,omitempty"`
	Role             string            `json:"role,omitempty"`
	Products         []string          `json:"products,omitempty"`
	UserGroup        string            `json:"userGroup,omitempty"`
	DeviceGroups     []string          `json:"deviceGroups,omitempty"`
	SettingsTemplate string            `json:"settingsTemplate,omitempty"`
	CustomFields     map[string]string `json:"customFields,omitempty"`
	Note             string            `json:"note,omitempty"`
}

// Assignment is what one user gets after resolution.
type Assignment struct {
	Role             string            `json:"role,omitempty"`
	Products         []string          `json:"products,omitempty"` // sorted, unique
	UserGroup        string            `json:"userGroup,omitempty"`
	DeviceGroups     []string          `json:"deviceGroups,omitempty"` // sorted, unique
	SettingsTemplate string            `json:"settingsTemplate,omitempty"`
	CustomFields     map[string]string `json:"customFields,omitempty"`
	// MatchedRules are the IDs of the rules whose group holds the user, in priority order.
	MatchedRules []int64 `json:"matchedRules,omitempty"`
	// ProductPriority is, per product, the priority of the best rule that grants it
	// (used to order users when seats run short).
	ProductPriority map[string]int `json:"productPriority,omitempty"`
	// Sources says, per single-valued field ("role", "userGroup", "settingsTemplate",
	// "custom:<name>"), which rule ID set it. For "explain".
	Sources map[string]int64 `json:"sources,omitempty"`
}

// Catalog is what the target knows; rules are validated against it on save.
type Catalog struct {
	Products  []string `json:"products"`
	Roles     []string `json:"roles"`
	Templates []string `json:"templates"`
}
