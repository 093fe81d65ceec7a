package activities

import (
	"context"
	"strings"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
)

// LoadPlanInput reads from the store everything a plan of org needs except the users and the
// run's own options (retry filter, approval, suspension thresholds). PlanRun and the CLI's
// explain share it, so that explain plans exactly what a sync would. It is a function, not
// an Activities method: every exported method of Activities is registered as an activity.
func LoadPlanInput(ctx context.Context, st PlanInputStore, org string) (plan.Input, error) {
	pin, err := loadPlanConfig(ctx, st, org)
	if err != nil {
		return pin, err
	}
	if pin.Failed, err = st.FailedUsers(ctx, org); err != nil {
		return pin, err
	}
	if pin.Seats, pin.Held, err = st.SeatState(ctx, org); err != nil {
		return pin, err
	}
	if pin.Reconcile, err = st.OpenIntents(ctx, org); err != nil {
		return pin, err
	}
	pin.Applied, err = st.AppliedStates(ctx, org)
	return pin, err
}

// loadPlanConfig is what a plan needs besides per-user data (users, applied states,
// failures, seat holders): the streaming PlanRun reads those joined, one user at a time.
func loadPlanConfig(ctx context.Context, st ConfigStore, org string) (plan.Input, error) {
	var pin plan.Input
	var err error
	if pin.Rules, err = st.Rules(ctx, org); err != nil {
		return pin, err
	}
	if pin.Mappings, err = st.Mappings(ctx, org); err != nil {
		return pin, err
	}
	domains, err := st.Domains(ctx, org)
	if err != nil {
		return pin, err
	}
	pin.ValidatedDomains = map[string]bool{}
	for _, d := range domains {
		if d.Validated {
			pin.ValidatedDomains[strings.ToLower(d.Name)] = true
		}
	}
	if pin.PreviousSnapshotSize, err = st.LastGoodSnapshotSize(ctx, org); err != nil {
		return pin, err
	}
	return pin, nil
}

// SnapshotScope is what a directory read asks for: the ruled groups (each once, in rule
// order) and the source attributes of the mappings.
func SnapshotScope(rs []rules.Rule, ms []plan.Mapping) (groupDNs, attrs []string) {
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.GroupDN] {
			seen[r.GroupDN] = true
			groupDNs = append(groupDNs, r.GroupDN)
		}
	}
	for _, m := range ms {
		attrs = append(attrs, m.Source)
	}
	return groupDNs, attrs
}
