package connect

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/orgs"
)

// settings is an in-memory orgs store that counts its reads.
type settings struct {
	mu         sync.Mutex
	orgs       map[string]orgs.Org
	gets, vers int
}

func (s *settings) Get(_ context.Context, org string) (orgs.Org, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	o, ok := s.orgs[org]
	if !ok {
		return orgs.Org{}, orgs.ErrNotFound
	}
	return o, nil
}

func (s *settings) Version(_ context.Context, org string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vers++
	o, ok := s.orgs[org]
	if !ok {
		return 0, orgs.ErrNotFound
	}
	return o.Version, nil
}

func org(name string, version int64, max int) orgs.Org {
	return orgs.Org{Name: name, Version: version, Settings: orgs.Settings{
		Directory:           orgs.Directory{URL: "ldap://127.0.0.1:1", BaseDN: "dc=x"},
		Target:              orgs.Target{URL: "http://127.0.0.1:1/scim"},
		SuspendThresholdMax: max,
	}}
}

// Connections are built once per settings version: a change reaches the worker after the
// recheck interval, a deletion makes the organization unknown, and each organization gets
// its own.
func TestConnectionsFollowTheSettingsVersion(t *testing.T) {
	ctx := context.Background()
	s := &settings{orgs: map[string]orgs.Org{"acme": org("acme", 1, 10), "globex": org("globex", 1, 20)}}
	o := &Orgs{Settings: s, Recheck: 50 * time.Millisecond}

	a1, err := o.Org(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 10, a1.SuspendThresholdMax)
	g, err := o.Org(ctx, "globex")
	require.NoError(t, err)
	require.Equal(t, 20, g.SuspendThresholdMax, "each organization its own settings")
	require.NotSame(t, a1.Target, g.Target)

	again, err := o.Org(ctx, "acme")
	require.NoError(t, err)
	require.Same(t, a1, again, "cached within the recheck interval")
	require.Equal(t, 2, s.gets)
	require.Zero(t, s.vers, "no database read within the recheck interval")

	time.Sleep(60 * time.Millisecond)
	same, err := o.Org(ctx, "acme")
	require.NoError(t, err)
	require.Same(t, a1, same, "unchanged version: the same connections")
	require.Equal(t, 1, s.vers)

	s.mu.Lock()
	s.orgs["acme"] = org("acme", 2, 11)
	s.mu.Unlock()
	time.Sleep(60 * time.Millisecond)
	a2, err := o.Org(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 11, a2.SuspendThresholdMax, "a new version is rebuilt")

	s.mu.Lock()
	delete(s.orgs, "acme")
	s.mu.Unlock()
	time.Sleep(60 * time.Millisecond)
	_, err = o.Org(ctx, "acme")
	require.True(t, errors.Is(err, activities.ErrUnknownOrg), "%v", err)
	_, err = o.Org(ctx, "nobody")
	require.True(t, errors.Is(err, activities.ErrUnknownOrg), "%v", err)
	g2, err := o.Org(ctx, "globex")
	require.NoError(t, err)
	require.Same(t, g, g2, "another organization's deletion leaves globex alone")
}

// Steps of many users ask at once while the settings change (run with -race).
func TestConnectionsUnderConcurrentSteps(t *testing.T) {
	s := &settings{orgs: map[string]orgs.Org{"acme": org("acme", 1, 10)}}
	o := &Orgs{Settings: s, Recheck: time.Millisecond}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if g == 0 && i%50 == 0 {
					s.mu.Lock()
					s.orgs["acme"] = org("acme", int64(2+i), 10+i)
					s.mu.Unlock()
				}
				if _, err := o.Org(context.Background(), "acme"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(2 * time.Millisecond)
	got, err := o.Org(context.Background(), "acme")
	require.NoError(t, err)
	require.Equal(t, 10+150, got.SuspendThresholdMax, "the newest version wins")
}
