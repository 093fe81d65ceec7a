// Package connect gives each organization its connections (directory, target, request pace,
// thresholds) from its settings in PostgreSQL, so that one worker serves every organization
// and a step only ever reaches the directory and the target of the organization in its input.
// Connections are cached per organization and rebuilt when its settings' version changes.
package connect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/metrics"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/scim"
)

// Settings is where the organizations' settings come from (orgs.Repo).
type Settings interface {
	Get(ctx context.Context, org string) (orgs.Org, error)
	Version(ctx context.Context, org string) (int64, error)
}

// Pacers gives the request pace shared by every worker for a key (store.Store.Pacer).
type Pacers func(key string, perSecond float64) scim.Pacer

// RateHeadroom keeps the request pace just under the target's limit, so that network jitter
// never lands a request in an empty bucket (429).
const RateHeadroom = 0.98

// Orgs implements activities.Orgs over the organizations' settings.
type Orgs struct {
	Settings Settings
	Pacers   Pacers
	// Recheck is how long cached connections are used before the settings' version is read
	// again (default 2s): a settings change reaches every worker within it, and a step does
	// not pay a database round trip for it.
	Recheck time.Duration
	// Metrics counts each organization's SCIM requests and pacer waits (nil: none).
	Metrics *metrics.Metrics

	mu    sync.Mutex
	cache map[string]*entry
}

type entry struct {
	version int64
	checked time.Time
	org     *activities.Org
	http    *http.Client
}

var _ activities.Orgs = (*Orgs)(nil)

// Org returns org's connections: activities.ErrUnknownOrg when it has no settings.
func (o *Orgs) Org(ctx context.Context, org string) (*activities.Org, error) {
	recheck := o.Recheck
	if recheck <= 0 {
		recheck = 2 * time.Second
	}
	now := time.Now()
	o.mu.Lock()
	e := o.cache[org]
	var fresh bool
	if e != nil {
		fresh = now.Sub(e.checked) < recheck
	}
	o.mu.Unlock()
	if fresh {
		return e.org, nil
	}
	if e != nil {
		v, err := o.Settings.Version(ctx, org)
		if err != nil {
			return nil, o.miss(org, err)
		}
		if v == e.version {
			o.mu.Lock()
			e.checked = now
			o.mu.Unlock()
			return e.org, nil
		}
	}
	rec, err := o.Settings.Get(ctx, org)
	if err != nil {
		return nil, o.miss(org, err)
	}
	built, err := o.build(rec)
	if err != nil {
		return nil, fmt.Errorf("organization %q settings (version %d): %w", org, rec.Version, err)
	}
	built.checked = now
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cache == nil {
		o.cache = map[string]*entry{}
	}
	old := o.cache[org]
	if old != nil && old.version > built.version {
		// Another step built a newer version meanwhile: it stands.
		built.http.CloseIdleConnections()
		return old.org, nil
	}
	if old != nil {
		old.http.CloseIdleConnections()
	}
	o.cache[org] = built
	return built.org, nil
}

// miss forgets org's connections when its settings are gone.
func (o *Orgs) miss(org string, err error) error {
	if !errors.Is(err, orgs.ErrNotFound) {
		return err
	}
	o.mu.Lock()
	if e := o.cache[org]; e != nil {
		e.http.CloseIdleConnections()
		delete(o.cache, org)
	}
	o.mu.Unlock()
	return activities.ErrUnknownOrg
}

// build makes the connections of one version of an organization's settings.
func (o *Orgs) build(rec orgs.Org) (*entry, error) {
	s := rec.Settings
	hc, err := s.Target.HTTPClient()
	if err != nil {
		return nil, err
	}
	counted := *hc
	counted.Transport = o.Metrics.Transport(rec.Name, hc.Transport)
	cfg := scim.Config{BaseURL: s.Target.URL, Token: rec.Secrets.Token, HTTPClient: &counted,
		// One request per call: Temporal owns the retries (a Retry-After becomes the next
		// retry delay), so no call outlives its activity attempt.
		MaxAttempts: 1}
	if o.Metrics != nil {
		cfg.PacerWait = func(d time.Duration) { o.Metrics.PacerWait(rec.Name, d) }
	}
	rate := 0.0
	if s.Target.Rate > 0 && o.Pacers != nil {
		// The organization's own pace, shared by every worker: one organization's target
		// limit never slows another's.
		rate = s.Target.Rate * RateHeadroom
		cfg.Pacer = o.Pacers("scim/"+rec.Name, rate)
	}
	return &entry{version: rec.Version, http: hc, org: &activities.Org{
		Dial:                    activities.LDAP(s.Directory.Config(rec.Secrets.BindPassword)),
		Watch:                   activities.LDAPWatch(s.Directory.Config(rec.Secrets.BindPassword)),
		Target:                  scim.New(cfg),
		SuspendThresholdPercent: s.SuspendThresholdPercent,
		SuspendThresholdMax:     s.SuspendThresholdMax,
		Paced:                   cfg.Pacer != nil,
		Rate:                    rate,
		Incremental:             s.Directory.Incremental(),
		FullReadEvery:           s.Directory.FullReadEvery(),
	}}, nil
}
