package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// Every write is accounted for (issue 9): a write whose answer is lost keeps the user's
// seats, and the next attempt or run reads the target before anything else. These tests
// drive the steps as the page workflow does (ProvisionUser attempts, then ProbeTarget and
// RecordUserFailure once the attempts run out) against a target that commits a write and
// loses its answer, and read the target back over SCIM.

// intentTarget is a target under test: a client that sends each request once (as the
// worker's), one that reads back what the target holds, and the target's fault switches.
type intentTarget struct {
	client, reader *scim.Client
	cfg            scim.Config // client's
	// dropNext carries out the next request of method and loses its answer; failNext
	// answers the next n requests 503.
	dropNext func(method string)
	failNext func(n int)
	// posts counts the POST /Users the target received.
	posts func() int
}

// sandboxTarget is the strict sandbox.
func sandboxTarget(t *testing.T) intentTarget {
	t.Helper()
	sb := scimsandbox.New(scimsandbox.Options{Token: "intent-test-token"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	cfg := scim.Config{BaseURL: srv.URL, Token: "intent-test-token", MaxAttempts: 1}
	return intentTarget{
		client:   scim.New(cfg),
		cfg:      cfg,
		reader:   scim.New(scim.Config{BaseURL: srv.URL, Token: "intent-test-token", MaxAttempts: 1}),
		dropNext: func(method string) { sb.DropAnswers(1, method) },
		failNext: func(n int) { sb.FailNext(n, http.StatusServiceUnavailable) },
		posts:    func() int { return sb.Stats().Count("POST", "/Users") },
	}
}

// faultProxy is a reverse proxy in front of a SCIM server we did not write: it forwards
// every request, and can lose the answer of one (the server did the work) or answer 503
// without forwarding.
type faultProxy struct {
	next  http.Handler
	drop  atomic.Value // method whose next answer is lost
	fail  atomic.Int32 // requests left to answer 503
	posts atomic.Int32
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := p.fail.Load(); n > 0 && p.fail.CompareAndSwap(n, n-1) {
		w.Header().Set("Content-Type", "application/scim+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"proxy"}`))
		return
	}
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Users") {
		p.posts.Add(1)
	}
	if m, _ := p.drop.Load().(string); m != "" && m == r.Method && p.drop.CompareAndSwap(m, "") {
		rec := httptest.NewRecorder()
		p.next.ServeHTTP(rec, r)
		if rec.Code >= 300 {
			panic(fmt.Sprintf("fault proxy: the dropped %s was refused: %d %s", r.Method, rec.Code, rec.Body))
		}
		panic(http.ErrAbortHandler) // the server did it; the answer never comes back
	}
	p.next.ServeHTTP(w, r)
}

// scimmyTarget is SCIMMY behind a faultProxy.
func scimmyTarget(t *testing.T) intentTarget {
	t.Helper()
	const token = "scimmy-intent-token"
	base := devstacktest.SCIMMY(t, devstack.SCIMMY{Token: token})
	u, err := url.Parse(base)
	require.NoError(t, err)
	p := &faultProxy{next: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})}
	p.drop.Store("")
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	cfg := scim.Config{BaseURL: srv.URL + u.Path, Token: token, MaxAttempts: 1}
	return intentTarget{
		client:   scim.New(cfg),
		cfg:      cfg,
		reader:   scim.New(scim.Config{BaseURL: base, Token: token, MaxAttempts: 1}),
		dropNext: func(method string) { p.drop.Store(method) },
		failNext: func(n int) { p.fail.Store(int32(n)) },
		posts:    func() int { return int(p.posts.Load()) },
	}
}

// addRun writes a run of org with items (seq 0, 1, ...).
func addRun(t *testing.T, ctx context.Context, st *store.Store, org, runID string, items ...plan.Item) {
	t.Helper()
	_, err := st.BeginRun(ctx, org, runID, vocab.KindManual, false)
	require.NoError(t, err)
	w := st.NewWorkWriter(runID)
	for _, it := range items {
		require.NoError(t, w.Add(ctx, it, plan.SeatKey{}))
	}
	require.NoError(t, w.Flush(ctx))
}

// seatsHeld returns the products whose seat externalID holds in PostgreSQL, sorted.
func seatsHeld(t *testing.T, ctx context.Context, st *store.Store, org, externalID string) []string {
	t.Helper()
	_, held, err := st.SeatState(ctx, org)
	require.NoError(t, err)
	var out []string
	for p, holders := range held {
		if holders[externalID] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// accountsOf reads the target over SCIM: every account carrying externalID.
func accountsOf(t *testing.T, ctx context.Context, tg intentTarget, externalID string) []*scim.User {
	t.Helper()
	var out []*scim.User
	require.NoError(t, tg.reader.ListUsers(ctx, scim.Extension{}, func(u *scim.User) error {
		if u.ExternalID == externalID {
			out = append(out, u)
		}
		return nil
	}))
	return out
}

// retriesRunOut is what the page workflow does for a user once ProvisionUser has failed
// attempts more times (each attempt asserted to be a retryable error): ProbeTarget, then, the
// target being up, RecordUserFailure with the workflow's failure.
func retriesRunOut(t *testing.T, acts *Activities, step steps.UserStep, attempts int) steps.UserOutcome {
	t.Helper()
	var last error
	for i := range attempts {
		_, err := provisionAttempt(t, acts, step)
		var ae *temporal.ApplicationError
		require.True(t, errors.As(err, &ae), "attempt %d: want a retryable error, got %v", i+1, err)
		require.False(t, ae.NonRetryable(), "attempt %d: %v", i+1, err)
		last = err
	}
	down, err := acts.ProbeTarget(context.Background(), step)
	require.NoError(t, err)
	require.False(t, down)
	o, err := acts.RecordUserFailure(context.Background(), steps.UserFailureInput{UserStep: step, Failure: vocab.Failure{
		Type: vocab.TargetUnavailable, Message: fmt.Sprintf("the target did not accept the change after %d attempts: %v", attempts, last)}})
	require.NoError(t, err)
	return o
}

// A create whose 201 is lost, then every retry fails: the account exists in the target with
// its entitlements, so the user keeps the seats (PostgreSQL says what the target holds) and
// fails target_unavailable "to reconcile". The next run finds the account by externalId and
// links it: one account, never two, seats equal to what it holds.
func TestLostCreateThenRetriesRunOutKeepsSeatsAndTheNextRunLinks(t *testing.T) {
	for name, start := range map[string]func(*testing.T) intentTarget{"sandbox": sandboxTarget, "scimmy": scimmyTarget} {
		t.Run(name, func(t *testing.T) {
			const org = "acme"
			tg := start(t)
			ann := createItem("ann", "Webinar")
			st, ctx := runWith(t, org, "acme/run/1", ann)
			require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 1))
			acts := &Activities{Store: st, Orgs: Single(org, Org{Target: tg.client})}
			step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/1"}}

			r, err := acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: step, ExternalID: "ann", Products: ann.NewSeats})
			require.NoError(t, err)
			require.True(t, r.Continue)
			tg.dropNext(http.MethodPost) // attempt 1: created, the 201 is lost
			_, err = provisionAttempt(t, acts, step)
			require.ErrorContains(t, err, "network error")
			tg.failNext(2) // attempts 2 and 3: the target answers 503
			o := retriesRunOut(t, acts, step, 2)
			require.Equal(t, vocab.TargetUnavailable, o.FailureType)

			accounts := accountsOf(t, ctx, tg, "ann")
			require.Len(t, accounts, 1, "the lost create did land")
			require.Equal(t, []string{"Webinar"}, accounts[0].Products)
			require.Equal(t, accounts[0].Products, seatsHeld(t, ctx, st, org, "ann"), "seats follow what the target holds")
			fs, err := st.Failures(ctx, org, vocab.Filter{User: "ann"})
			require.NoError(t, err)
			require.Len(t, fs, 1)
			require.Contains(t, fs[0].Message, "to reconcile")

			// The next run: the plan keeps ann's seat (held), so the create takes no new one.
			next := ann
			next.NewSeats = nil
			addRun(t, ctx, st, org, "acme/run/2", next)
			o, err = provisionAttempt(t, acts, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/2"}})
			require.NoError(t, err)
			require.Equal(t, vocab.Created, o.Status)
			accounts = accountsOf(t, ctx, tg, "ann")
			require.Len(t, accounts, 1, "never created twice")
			require.Equal(t, 1, tg.posts(), "the next run read the account instead of creating it")
			w, err := st.UserWork(ctx, org, "acme/run/2", 0)
			require.NoError(t, err)
			require.NotNil(t, w.Applied, "linked")
			require.Equal(t, accounts[0].ID, w.Applied.ScimID)
			require.Nil(t, w.Intent, "the outcome is recorded")
			require.Equal(t, accounts[0].Products, seatsHeld(t, ctx, st, org, "ann"))
			fs, err = st.Failures(ctx, org, vocab.Filter{User: "ann"})
			require.NoError(t, err)
			require.Empty(t, fs)
		})
	}
}

// A linked user gains a product; the PATCH lands but its answer is lost, then every retry
// fails. The account holds the new entitlement, so its seat stays: seats in PostgreSQL are
// the products the account holds in the target, and no other user can be handed that seat.
func TestLostPatchThenRetriesRunOutKeepsTheSeatTheAccountHolds(t *testing.T) {
	for name, start := range map[string]func(*testing.T) intentTarget{"sandbox": sandboxTarget, "scimmy": scimmyTarget} {
		t.Run(name, func(t *testing.T) { lostPatchThenRetriesRunOut(t, start(t)) })
	}
}

func lostPatchThenRetriesRunOut(t *testing.T, tg intentTarget) {
	const org = "acme"
	ann := createItem("ann", "Meeting")
	st, ctx := runWith(t, org, "acme/run/0")
	for _, p := range []string{"Meeting", "Webinar"} {
		require.NoError(t, st.SetLicense(ctx, org, "test", p, 1))
	}
	created, err := tg.client.CreateUser(ctx, scim.Extension{}, ann.Desired)
	require.NoError(t, err)
	require.NoError(t, st.SaveProvisioned(ctx, org, created.ID, ann.Desired, "acme/run/0", vocab.Created))
	short, _, err := st.ReserveSeats(ctx, org, "ann", []string{"Meeting"})
	require.NoError(t, err)
	require.Empty(t, short)

	update := ann
	update.Action, update.NewSeats = plan.Update, []string{"Webinar"}
	update.Desired.Products = []string{"Meeting", "Webinar"}
	update.Changed = plan.Diff(ann.Desired, update.Desired)
	addRun(t, ctx, st, org, "acme/run/1", update)
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: tg.client})}
	step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/1"}}
	r, err := acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: step, ExternalID: "ann", Products: update.NewSeats})
	require.NoError(t, err)
	require.True(t, r.Continue)

	tg.dropNext(http.MethodPatch)
	_, err = provisionAttempt(t, acts, step)
	require.ErrorContains(t, err, "network error")
	tg.failNext(2)
	o := retriesRunOut(t, acts, step, 2)
	require.Equal(t, vocab.TargetUnavailable, o.FailureType)
	accounts := accountsOf(t, ctx, tg, "ann")
	require.Len(t, accounts, 1)
	require.Equal(t, []string{"Meeting", "Webinar"}, accounts[0].Products, "the lost PATCH landed")
	require.Equal(t, accounts[0].Products, seatsHeld(t, ctx, st, org, "ann"))

	// Webinar has one seat: the next plan must not hand it to bob.
	ls, err := st.Licenses(ctx, org)
	require.NoError(t, err)
	for _, l := range ls {
		require.Equal(t, l.Seats, l.Used, "%s: every seat is taken", l.Product)
	}
	short, _, err = st.ReserveSeats(ctx, org, "bob", []string{"Webinar"})
	require.NoError(t, err)
	require.Equal(t, "Webinar", short)

	// The next run reads the account, links what it holds and has nothing left to send.
	next := update
	next.NewSeats = nil
	addRun(t, ctx, st, org, "acme/run/2", next)
	o, err = provisionAttempt(t, acts, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/2"}})
	require.NoError(t, err)
	require.Equal(t, vocab.Updated, o.Status)
	w, err := st.UserWork(ctx, org, "acme/run/2", 0)
	require.NoError(t, err)
	require.Nil(t, w.Intent)
	require.Equal(t, []string{"Meeting", "Webinar"}, w.Applied.State.Products)
	require.Equal(t, accountsOf(t, ctx, tg, "ann")[0].Products, seatsHeld(t, ctx, st, org, "ann"))
}

// crashAfterWrite is a store whose saves of a provisioned user fail while crash is set: the
// step ends with an error after the target committed the write, as a worker that dies then.
type crashAfterWrite struct {
	*store.Store
	crash bool
}

func (s *crashAfterWrite) SaveProvisioned(ctx context.Context, org, scimID string, d plan.Desired, runID, outcome string) error {
	if s.crash {
		return errors.New("worker lost before saving the outcome")
	}
	return s.Store.SaveProvisioned(ctx, org, scimID, d, runID, outcome)
}

// A step that ends after the target committed its create, before the outcome was saved: the
// user keeps its seat, and the next run finds the account and links it without a second POST.
func TestCrashAfterTheTargetCommittedIsReconciledByTheNextRun(t *testing.T) {
	const org = "acme"
	tg := sandboxTarget(t)
	ann := createItem("ann", "Webinar")
	st, ctx := runWith(t, org, "acme/run/1", ann)
	require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 1))
	crashing := &crashAfterWrite{Store: st, crash: true}
	acts := &Activities{Store: crashing, Orgs: Single(org, Org{Target: tg.client})}
	step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/1"}}
	r, err := acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: step, ExternalID: "ann", Products: ann.NewSeats})
	require.NoError(t, err)
	require.True(t, r.Continue)

	_, err = provisionAttempt(t, acts, step)
	require.ErrorContains(t, err, "worker lost")
	require.Len(t, accountsOf(t, ctx, tg, "ann"), 1, "the target committed the create")
	// The run is cancelled here (the worker is gone): no failure, no release.
	require.Equal(t, []string{"Webinar"}, seatsHeld(t, ctx, st, org, "ann"))

	crashing.crash = false
	next := ann
	next.NewSeats = nil
	addRun(t, ctx, st, org, "acme/run/2", next)
	o, err := provisionAttempt(t, acts, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/2"}})
	require.NoError(t, err)
	require.Equal(t, vocab.Created, o.Status)
	accounts := accountsOf(t, ctx, tg, "ann")
	require.Len(t, accounts, 1)
	require.Equal(t, 1, tg.posts(), "one POST in all")
	w, err := st.UserWork(ctx, org, "acme/run/2", 0)
	require.NoError(t, err)
	require.Equal(t, accounts[0].ID, w.Applied.ScimID)
	require.Nil(t, w.Intent)
	require.Equal(t, accounts[0].Products, seatsHeld(t, ctx, st, org, "ann"))
}

// A write the target refuses did not happen: its seats go back and nothing stays open.
func TestRefusedWriteGivesBackItsSeatsAndClosesItsIntent(t *testing.T) {
	const org = "acme"
	ann := createItem("ann", "Webinar")
	st, ctx := runWith(t, org, "acme/run/1", ann)
	require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 1))
	target, _ := scimAnswer(t, http.StatusBadRequest, "")
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: target})}
	step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/1"}}
	_, err := acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: step, ExternalID: "ann", Products: ann.NewSeats})
	require.NoError(t, err)
	o, err := provisionAttempt(t, acts, step)
	require.NoError(t, err)
	require.Equal(t, vocab.TargetRejected, o.FailureType)
	require.Empty(t, seatsHeld(t, ctx, st, org, "ann"))
	i, err := st.OpenIntentOf(ctx, org, "ann")
	require.NoError(t, err)
	require.Nil(t, i)
}

// A create whose 201 is lost, then every retry fails; before any later attempt links the
// account, the user leaves scope. The next run still reaches the account: it plans the
// suspension, the step finds the account by externalId, links it and suspends it, and its
// seat goes back. A user whose reserved seat was never used (the write never started) and
// who left, or who now fails, gets its seat back too.
func TestLostCreateThenTheUserLeavesTheNextRunSuspendsTheAccount(t *testing.T) {
	const org, group = "acme", "cn=staff,ou=groups,dc=acme,dc=test"
	tg := sandboxTarget(t)
	ann := createItem("ann", "Webinar")
	st, ctx := runWith(t, org, "acme/run/1", ann)
	require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 5))
	require.NoError(t, st.SetDomain(ctx, org, "test", "acme.test", true))
	_, err := st.Pool().Exec(ctx, `INSERT INTO rules (org, id, priority, group_dn, role, products) VALUES ($1, 1, 1, $2, 'Member', '{Webinar}')`, org, group)
	require.NoError(t, err)
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: tg.client})}
	step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/1"}}
	_, err = acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: step, ExternalID: "ann", Products: ann.NewSeats})
	require.NoError(t, err)
	tg.dropNext(http.MethodPost)
	_, err = provisionAttempt(t, acts, step)
	require.ErrorContains(t, err, "network error")
	tg.failNext(2)
	retriesRunOut(t, acts, step, 2)
	require.Len(t, accountsOf(t, ctx, tg, "ann"), 1)
	// carl's seat was reserved, then the run was cancelled before his write started.
	short, _, err := st.ReserveSeats(ctx, org, "carl", []string{"Webinar"})
	require.NoError(t, err)
	require.Empty(t, short)

	// So was dora's, whose email domain is no longer validated.
	short, _, err = st.ReserveSeats(ctx, org, "dora", []string{"Webinar"})
	require.NoError(t, err)
	require.Empty(t, short)

	// The next read: ann and carl are gone, bob is in scope, dora fails.
	const run2 = "acme/run/2"
	attempt, err := st.BeginRun(ctx, org, run2, vocab.KindScheduled, false)
	require.NoError(t, err)
	require.NoError(t, st.WriteSnapshot(ctx, run2, attempt, []directory.User{{ExternalID: "bob", UserName: "bob@acme.test",
		Email: "bob@acme.test", Groups: []string{group}}, {ExternalID: "dora", UserName: "dora@other.test",
		Email: "dora@other.test", Groups: []string{group}}}))
	res, err := acts.PlanRun(ctx, steps.PlanInput{RunRef: steps.RunRef{Org: org, RunID: run2}})
	require.NoError(t, err)
	require.Equal(t, 1, res.Suspends, "ann's account is within reach of the leavers pass")
	require.Empty(t, seatsHeld(t, ctx, st, org, "carl"), "a reservation whose write never started goes back")
	ev, err := acts.EvaluatePage(ctx, steps.PageRef{RunRef: steps.RunRef{Org: org, RunID: run2}, From: 0, To: res.Items})
	require.NoError(t, err)
	require.Equal(t, 1, ev.Failures[vocab.DomainNotValidated])
	require.Empty(t, seatsHeld(t, ctx, st, org, "dora"), "a reservation never used goes back when its user fails")
	for _, u := range ev.Users {
		if u.ExternalID != "ann" {
			continue
		}
		o, err := provisionAttempt(t, acts, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run2}, Seq: u.Seq})
		require.NoError(t, err)
		require.Equal(t, vocab.Suspended, o.Status)
	}
	accounts := accountsOf(t, ctx, tg, "ann")
	require.Len(t, accounts, 1)
	require.False(t, accounts[0].Active, "suspended in the target")
	require.Empty(t, accounts[0].Products, "its entitlements removed")
	require.Empty(t, seatsHeld(t, ctx, st, org, "ann"))
	applied, err := st.AppliedStates(ctx, org)
	require.NoError(t, err)
	require.Equal(t, accounts[0].ID, applied["ann"].ScimID, "linked")
	i, err := st.OpenIntentOf(ctx, org, "ann")
	require.NoError(t, err)
	require.Nil(t, i)
	fs, err := st.Failures(ctx, org, vocab.Filter{User: "ann"})
	require.NoError(t, err)
	require.Empty(t, fs)
}

// A PATCH that the target refused with a 503 before committing, then every retry fails: its
// outcome is unknown to us, so the seat stays. The next run reads the account (it lacks the
// product), keeps the seat reserved for the write and sends the PATCH: the seat and the
// entitlement end up together.
func TestUnknownPatchThatDidNotLandKeepsItsSeatForTheNextRunsWrite(t *testing.T) {
	const org = "acme"
	tg := sandboxTarget(t)
	ann := createItem("ann", "Meeting")
	st, ctx := runWith(t, org, "acme/run/0")
	for _, p := range []string{"Meeting", "Webinar"} {
		require.NoError(t, st.SetLicense(ctx, org, "test", p, 1))
	}
	created, err := tg.client.CreateUser(ctx, scim.Extension{}, ann.Desired)
	require.NoError(t, err)
	require.NoError(t, st.SaveProvisioned(ctx, org, created.ID, ann.Desired, "acme/run/0", vocab.Created))
	_, _, err = st.ReserveSeats(ctx, org, "ann", []string{"Meeting"})
	require.NoError(t, err)
	update := ann
	update.Action, update.NewSeats = plan.Update, []string{"Webinar"}
	update.Desired.Products = []string{"Meeting", "Webinar"}
	addRun(t, ctx, st, org, "acme/run/1", update)
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: tg.client})}
	step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/1"}}
	_, err = acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: step, ExternalID: "ann", Products: update.NewSeats})
	require.NoError(t, err)
	tg.failNext(3)
	retriesRunOut(t, acts, step, 3)
	require.Equal(t, []string{"Meeting"}, accountsOf(t, ctx, tg, "ann")[0].Products, "nothing landed")
	require.Equal(t, []string{"Meeting", "Webinar"}, seatsHeld(t, ctx, st, org, "ann"), "unknown to us: kept")

	next := update
	next.NewSeats = nil // held
	addRun(t, ctx, st, org, "acme/run/2", next)
	o, err := provisionAttempt(t, acts, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: "acme/run/2"}})
	require.NoError(t, err)
	require.Equal(t, vocab.Updated, o.Status)
	require.Equal(t, []string{"Meeting", "Webinar"}, accountsOf(t, ctx, tg, "ann")[0].Products)
	require.Equal(t, []string{"Meeting", "Webinar"}, seatsHeld(t, ctx, st, org, "ann"))
}

// Two creates whose outcome is unknown (ann's landed and its 201 was lost; bob's was answered
// 503 and did not land), then the run is cancelled. In the next run both fail a check before
// provisioning (their email domain is no longer validated). Their failure is recorded only
// after the target was read: ann's account is linked as it is, with the seats of what it
// holds (no account of ours outside our records); bob's seats go back and his intent closes.
func TestFailedCheckAfterAnUnknownCreateReadsTheTargetFirst(t *testing.T) {
	for name, start := range map[string]func(*testing.T) intentTarget{"sandbox": sandboxTarget, "scimmy": scimmyTarget} {
		t.Run(name, func(t *testing.T) { failedCheckAfterUnknownCreate(t, start(t)) })
	}
}

func failedCheckAfterUnknownCreate(t *testing.T, tg intentTarget) {
	const org, group = "acme", "cn=staff,ou=groups,dc=acme,dc=test"
	ann, bob := createItem("ann", "Webinar"), createItem("bob", "Webinar")
	st, ctx := runWith(t, org, "acme/run/1", ann, bob)
	require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 5))
	require.NoError(t, st.SetDomain(ctx, org, "test", "acme.test", true))
	_, err := st.Pool().Exec(ctx, `INSERT INTO rules (org, id, priority, group_dn, role, products) VALUES ($1, 1, 1, $2, 'Member', '{Webinar}')`, org, group)
	require.NoError(t, err)
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: tg.client})}
	run1 := steps.RunRef{Org: org, RunID: "acme/run/1"}
	for seq, it := range []plan.Item{ann, bob} {
		r, err := acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: steps.UserStep{RunRef: run1, Seq: seq}, ExternalID: it.ExternalID, Products: it.NewSeats})
		require.NoError(t, err)
		require.True(t, r.Continue)
	}
	tg.dropNext(http.MethodPost)
	_, err = provisionAttempt(t, acts, steps.UserStep{RunRef: run1, Seq: 0})
	require.ErrorContains(t, err, "network error")
	tg.failNext(1)
	_, err = provisionAttempt(t, acts, steps.UserStep{RunRef: run1, Seq: 1})
	require.ErrorContains(t, err, "503")
	// The run is cancelled here: both outcomes unknown, both seats kept.
	require.Len(t, accountsOf(t, ctx, tg, "ann"), 1)
	require.Empty(t, accountsOf(t, ctx, tg, "bob"))
	require.Equal(t, []string{"Webinar"}, seatsHeld(t, ctx, st, org, "bob"))

	// Later: the writes are older than searchSettle, so "not found" is trusted.
	_, err = st.Pool().Exec(ctx, `UPDATE write_intents SET opened_at = opened_at - interval '1 hour'`)
	require.NoError(t, err)
	posts := tg.posts()
	const run2 = "acme/run/2"
	attempt, err := st.BeginRun(ctx, org, run2, vocab.KindScheduled, false)
	require.NoError(t, err)
	var users []directory.User
	for _, id := range []string{"ann", "bob"} {
		users = append(users, directory.User{ExternalID: id, UserName: id + "@other.test", Email: id + "@other.test", Groups: []string{group}})
	}
	require.NoError(t, st.WriteSnapshot(ctx, run2, attempt, users))
	res, err := acts.PlanRun(ctx, steps.PlanInput{RunRef: steps.RunRef{Org: org, RunID: run2}})
	require.NoError(t, err)
	require.Equal(t, 2, res.Fails)
	ev, err := acts.EvaluatePage(ctx, steps.PageRef{RunRef: steps.RunRef{Org: org, RunID: run2}, From: 0, To: res.Items})
	require.NoError(t, err)
	require.Len(t, ev.Users, 2, "both go on to read the target first")
	for _, u := range ev.Users {
		o, err := provisionAttempt(t, acts, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run2}, Seq: u.Seq})
		require.NoError(t, err)
		require.Equal(t, vocab.DomainNotValidated, o.FailureType, u.ExternalID)
	}

	accounts := accountsOf(t, ctx, tg, "ann")
	require.Len(t, accounts, 1, "never created twice")
	require.True(t, accounts[0].Active, "kept as it is")
	require.Equal(t, accounts[0].Products, seatsHeld(t, ctx, st, org, "ann"), "seats follow what the account holds")
	linked, err := st.LinkedTo(ctx, org, accounts[0].ID)
	require.NoError(t, err)
	require.Equal(t, "ann", linked, "within reach of the leavers pass")
	require.Empty(t, seatsHeld(t, ctx, st, org, "bob"), "the write did not land: its seat goes back")
	require.Equal(t, posts, tg.posts(), "nothing was written for the failed users")
	for _, id := range []string{"ann", "bob"} {
		i, err := st.OpenIntentOf(ctx, org, id)
		require.NoError(t, err)
		require.Nil(t, i, "%s: settled", id)
		fs, err := st.Failures(ctx, org, vocab.Filter{User: id})
		require.NoError(t, err)
		require.Len(t, fs, 1)
		require.Equal(t, vocab.DomainNotValidated, fs[0].Type)
	}
}

// A target whose search index lags behind its writes: the create's 201 is lost, and right
// after it the account is not found by externalId or userName yet (its userName is taken
// all the same). The next attempt does not trust that "not found": it sends nothing and is
// retried once the write is older than searchSettle, and then finds and links the account.
// Created once, linked, its seat kept throughout.
func TestNotFoundRightAfterAnUnknownCreateIsStillUnknown(t *testing.T) {
	const org, run = "acme", "acme/run/1"
	sb := scimsandbox.New(scimsandbox.Options{Token: "intent-test-token"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	client := scim.New(scim.Config{BaseURL: srv.URL, Token: "intent-test-token", MaxAttempts: 1})
	settle := searchSettle
	searchSettle = 2 * time.Second
	t.Cleanup(func() { searchSettle = settle })
	const lag = 1500 * time.Millisecond
	sb.SetSearchLag(lag)

	ann := createItem("ann", "Webinar")
	st, ctx := runWith(t, org, run, ann)
	require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 1))
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: client})}
	step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}}
	_, err := acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: step, ExternalID: "ann", Products: ann.NewSeats})
	require.NoError(t, err)
	sb.DropAnswers(1, http.MethodPost)
	sent := time.Now()
	_, err = provisionAttempt(t, acts, step)
	require.ErrorContains(t, err, "network error")

	_, err = provisionAttempt(t, acts, step) // at once: the search does not find it yet
	require.Less(t, time.Since(sent), lag, "the test's second attempt came within the lag")
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "still unknown, retried: %v", err)
	require.False(t, ae.NonRetryable())
	require.ErrorContains(t, err, "not found by the target's search yet")
	require.Equal(t, 1, sb.Stats().Count("POST", "/Users"), "nothing sent on a search that may lag")
	require.Equal(t, []string{"Webinar"}, seatsHeld(t, ctx, st, org, "ann"))

	time.Sleep(time.Until(sent.Add(searchSettle)))
	o, err := provisionAttempt(t, acts, step)
	require.NoError(t, err)
	require.Equal(t, vocab.Created, o.Status)
	require.Len(t, sb.Users(), 1, "created once")
	require.Equal(t, 1, sb.Stats().Count("POST", "/Users"))
	w, err := st.UserWork(ctx, org, run, 0)
	require.NoError(t, err)
	require.NotNil(t, w.Applied, "linked")
	require.Equal(t, sb.Users()[0].ID, w.Applied.ScimID)
	require.Nil(t, w.Intent)
	require.Equal(t, []string{"Webinar"}, seatsHeld(t, ctx, st, org, "ann"))
}

// provisionStepOptions are provisionOptions scaled down: a four-second heartbeat
// timeout (a stalled attempt stops itself at 3 s; its last heartbeat may be an eighth of the
// timeout older than its last progress and the watch ticks every fortieth, which leaves the
// cancelled operation 0.4 s to return before the server's timeout, also under CI's load), a StartToClose long
// enough that a test which waits for it is a failed test, quick retries.
var provisionStepOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 20 * time.Second,
	HeartbeatTimeout:    4 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: 3},
}

// A create that the target carries out and never answers, sent by a client without a
// timeout of its own: the attempt makes no progress, so it is stopped within the heartbeat
// timeout (not held for its StartToClose), the request with it; the retry reads the account
// the write created and links it. Created once.
func TestHungProvisionAttemptIsStoppedWithinTheHeartbeatTimeoutAndRetried(t *testing.T) {
	const org, run = "acme", "acme/run/1"
	sb := scimsandbox.New(scimsandbox.Options{Token: "intent-test-token"})
	var hung, abandoned atomic.Bool
	var stalledFor atomic.Int64
	var afterHung atomic.Int32 // requests that arrived while the hung one still ran
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && hung.CompareAndSwap(false, true) {
			sb.ServeHTTP(httptest.NewRecorder(), r) // created; the answer never comes
			began := time.Now()
			<-r.Context().Done()
			stalledFor.Store(int64(time.Since(began)))
			abandoned.Store(true)
			return
		}
		if hung.Load() && !abandoned.Load() {
			afterHung.Add(1)
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	client := scim.New(scim.Config{BaseURL: srv.URL, Token: "intent-test-token", MaxAttempts: 1, HTTPClient: &http.Client{}})
	st, ctx := runWith(t, org, run, createItem("ann", "Webinar"))
	require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 1))
	_, _, err := st.ReserveSeats(ctx, org, "ann", []string{"Webinar"})
	require.NoError(t, err)
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: client})}

	began := time.Now()
	var o steps.UserOutcome
	err = stepRun(t, acts, steps.ProvisionUser, provisionStepOptions, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}}, &o, nil)
	require.NoError(t, err)
	require.Less(t, time.Since(began), 8*time.Second, "the hung attempt was not held until its StartToClose")
	require.True(t, abandoned.Load(), "the hung attempt gave its request up")
	require.Less(t, time.Duration(stalledFor.Load()), 2*provisionStepOptions.HeartbeatTimeout, "stopped within the heartbeat timeout")
	require.Zero(t, afterHung.Load(), "the retry never ran beside the hung attempt")
	require.Equal(t, vocab.Created, o.Status)
	require.Len(t, sb.Users(), 1, "created once")
	w, err := st.UserWork(ctx, org, run, 0)
	require.NoError(t, err)
	require.NotNil(t, w.Applied)
	require.Equal(t, sb.Users()[0].ID, w.Applied.ScimID)
	require.Equal(t, []string{"Webinar"}, seatsHeld(t, ctx, st, org, "ann"))
}

// A user write behind a slow target's pace waits for its request's slot (up to 10 s) and
// then sends: that attempt costs the Temporal server no heartbeat. One heartbeat per user was
// a write on the server for every user a paced organization provisions (issue 10).
func TestPacedUserWriteSendsNoHeartbeatWhileWaitingForItsSlot(t *testing.T) {
	const org, run = "acme", "acme/run/1"
	sb := scimsandbox.New(scimsandbox.Options{Token: "intent-test-token"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	st, ctx := runWith(t, org, run, createItem("ann"))
	// The slots of the writes let in before it reach 1.5 s ahead: it is let in, and waits.
	const ahead = 1500 * time.Millisecond
	_, err := st.Pool().Exec(ctx, `INSERT INTO request_slots (key, next_at) VALUES ('paced', clock_timestamp() + $1::interval)`, ahead)
	require.NoError(t, err)
	client := scim.New(scim.Config{BaseURL: srv.URL, Token: "intent-test-token", MaxAttempts: 1, Pacer: st.Pacer("paced", 5)})
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: client})}

	var heartbeats atomic.Int32
	opts := provisionStepOptions
	opts.HeartbeatTimeout = 90 * time.Second // provisionOptions'
	began := time.Now()
	var o steps.UserOutcome
	err = stepRun(t, acts, steps.ProvisionUser, opts, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}}, &o,
		func(*activity.Info, converter.EncodedValues) { heartbeats.Add(1) })
	require.NoError(t, err)
	require.Equal(t, vocab.Created, o.Status)
	require.GreaterOrEqual(t, time.Since(began), ahead, "the write waited for its slot")
	require.Zero(t, heartbeats.Load(), "no heartbeat for an attempt that waited for its slot and sent")
}
