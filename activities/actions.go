package activities

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/usersync/usersync/internal/steps"
)

// CheckAction runs the checks of an admin action that need the database (the org workflow
// cannot: its update validators must not do I/O). A refusal is a verdict, not an error: the
// workflow rejects the action with it; an error is the database failing (retried).
func (a *Activities) CheckAction(ctx context.Context, in steps.ActionCheck) (steps.ActionVerdict, error) {
	if f := in.Retry; f != nil && f.Product != "" {
		c, err := a.Store.Catalog(ctx, in.Org)
		if err != nil {
			return steps.ActionVerdict{}, err
		}
		if !slices.Contains(c.Products, f.Product) {
			return steps.ActionVerdict{Field: "filter.product", Value: strconv.Quote(f.Product),
				Reason: fmt.Sprintf("filter.product %q is not a product of the catalog (see `starter catalog`)", f.Product)}, nil
		}
	}
	if f := in.Retry; f != nil && f.User != "" {
		ok, err := a.Store.KnownUser(ctx, in.Org, f.User)
		if err != nil {
			return steps.ActionVerdict{}, err
		}
		if !ok { // the value may be a userName: personal data stays out of the verdict
			return steps.ActionVerdict{Field: "filter.user", Reason: "filter.user names no user of the organization"}, nil
		}
	}
	if h := in.Approve; h != nil {
		n, digest, err := a.Store.HeldSet(ctx, in.Org)
		if err != nil {
			return steps.ActionVerdict{}, err
		}
		if n != h.Count || digest != h.Digest {
			return steps.ActionVerdict{Field: "digest", Value: strconv.Quote(h.Digest), Reason: fmt.Sprintf(
				"the held suspensions changed: %d held now (digest %s), %d approved (digest %s); check `starter failures --type suspension_held` again",
				n, digest, h.Count, h.Digest)}, nil
		}
	}
	return steps.ActionVerdict{}, nil
}
