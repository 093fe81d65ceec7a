package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// A whole sync against our strict sandbox and against SCIMMY, a SCIM server we did not write,
// with the organization's custom extension declared by the target: the first sync with every
// failure type, buying seats and retrying, a rule change that rewrites custom fields and
// templates, a leaver. After every step the target is read back over SCIM: active accounts
// holding a product never exceed its seats and equal the seats counted, every account created
// is linked, custom fields and templates are where the target's schema says.
func TestWholeSyncOnEachTarget(t *testing.T) {
	for _, kind := range []string{sandboxTarget, scimmyTarget} {
		t.Run(kind, func(t *testing.T) {
			d := demo.Org()
			s := newStackOn(t, d, kind)
			s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "alice"})
			first := s.waitRun("")
			require.Equal(t, vocab.RunSucceeded, first.Status, first.Error)
			banners := s.banners()
			require.Equal(t, 10, banners[vocab.DomainNotValidated])
			require.Equal(t, 5, banners[vocab.ExistingAccount])
			require.Equal(t, 2, banners[vocab.InvalidUserData])
			require.Zero(t, banners[vocab.TargetRejected], "the target took everything we sent: %v", s.failures(vocab.Filter{Type: vocab.TargetRejected}))
			waiting := s.failures(vocab.Filter{Type: vocab.OutOfLicenses})
			require.NotEmpty(t, waiting)
			accounts := s.checkTarget()
			require.Equal(t, first.Outcomes[vocab.Created], countLinked(accounts))

			// Custom fields and templates are in the organization's extension, read back.
			alpha := demoMails(d, demoMembers(d, "Project-Alpha"))
			require.NotEmpty(t, alpha)
			withOffice, withTemplate := 0, 0
			for _, u := range accounts {
				if u.Custom["office"] != "" {
					withOffice++
				}
				if u.SettingsTemplate != "" {
					withTemplate++
				}
				if slices.Contains(alpha, u.UserName) && u.Active {
					require.Equal(t, "alpha", u.Custom["project"], u.UserName)
				}
			}
			require.NotZero(t, withOffice, "mapped custom field written")
			require.NotZero(t, withTemplate, "settings template written")

			// Buy seats, retry the license failures.
			require.NoError(t, s.store.SetLicense(s.ctx, org, "alice", demo.Webinar, 60+len(waiting)))
			s.signal(workflows.SignalRetry, workflows.RetrySignal{Actor: "alice", Filter: vocab.Filter{Type: vocab.OutOfLicenses}})
			retry := s.waitRun(first.RunID)
			require.Equal(t, len(waiting), retry.Outcomes[vocab.Created])
			require.Zero(t, s.banners()[vocab.OutOfLicenses])
			accounts = s.checkTarget()
			require.Equal(t, 60+len(waiting), activeWith(accounts, demo.Webinar))

			// A rule change: the project custom field and Support's template change.
			_, err := s.store.EditRules(s.ctx, org, "alice", "edit", func(cur []rules.Rule) ([]rules.Rule, error) {
				for i := range cur {
					switch cur[i].GroupDN {
					case demo.GroupDN("Project-Alpha"):
						cur[i].CustomFields = map[string]string{"project": "beta"}
					case demo.GroupDN("Support"):
						cur[i].SettingsTemplate = demo.Standard
					}
				}
				return cur, nil
			})
			require.NoError(t, err)
			s.signal(workflows.SignalSyncNow, workflows.ActorSignal{Actor: "alice"})
			changed := s.waitRun(retry.RunID)
			require.Equal(t, vocab.RunSucceeded, changed.Status, changed.Error)
			require.NotZero(t, changed.Outcomes[vocab.Updated])
			require.Zero(t, s.banners()[vocab.TargetRejected], "%v", s.failures(vocab.Filter{Type: vocab.TargetRejected}))
			accounts = s.checkTarget()
			support := demoMails(d, demoMembers(d, "Support"))
			for _, u := range accounts {
				if slices.Contains(alpha, u.UserName) && u.Active {
					require.Equal(t, "beta", u.Custom["project"], u.UserName)
				}
				if slices.Contains(support, u.UserName) && u.Active && u.SettingsTemplate != demo.Executive {
					require.NotEqual(t, demo.Restricted, u.SettingsTemplate, u.UserName)
				}
			}

			// The custom field is dropped from the rule (a remove of an attribute the accounts
			// hold) and a user is disabled in the directory (a leaver).
			_, err = s.store.EditRules(s.ctx, org, "alice", "edit", func(cur []rules.Rule) ([]rules.Rule, error) {
				for i := range cur {
					if cur[i].GroupDN == demo.GroupDN("Project-Alpha") {
						cur[i].CustomFields = nil
					}
				}
				return cur, nil
			})
			require.NoError(t, err)
			leaver := s.disableOneProvisioned(accounts)
			s.signal(workflows.SignalSyncNow, workflows.ActorSignal{Actor: "alice"})
			last := s.waitRun(changed.RunID)
			require.Equal(t, vocab.RunSucceeded, last.Status, last.Error)
			require.GreaterOrEqual(t, last.Outcomes[vocab.Suspended], 1)
			require.Zero(t, s.banners()[vocab.TargetRejected], "%v", s.failures(vocab.Filter{Type: vocab.TargetRejected}))
			after := s.checkTarget()
			gone, ok := after[leaver.ID]
			require.True(t, ok, "the leaver's account is kept")
			require.False(t, gone.Active, "the leaver is suspended")
			require.Empty(t, gone.Products)
			require.Empty(t, gone.Roles)
			for _, u := range after {
				if slices.Contains(alpha, u.UserName) {
					require.Empty(t, u.Custom["project"], "%s: removed custom field", u.UserName)
				}
			}
		})
	}
}

// checkTarget reads every account back over SCIM and checks the invariants a user of
// usersync relies on. It returns the accounts by SCIM id.
func (s *stack) checkTarget() map[string]*scim.User {
	s.t.Helper()
	accounts := map[string]*scim.User{}
	names := map[string]int{}
	require.NoError(s.t, s.target.ListUsers(s.ctx, s.ext, func(u *scim.User) error {
		accounts[u.ID] = u
		names[u.UserName]++
		return nil
	}))
	for n, c := range names {
		require.Equal(s.t, 1, c, "%s: one account", n)
	}
	ls, err := s.store.Licenses(s.ctx, org)
	require.NoError(s.t, err)
	for _, l := range ls {
		active := activeWith(accounts, l.Product)
		require.LessOrEqual(s.t, active, l.Seats, "%s: active accounts holding it never exceed its seats", l.Product)
		require.Equal(s.t, l.Used, active, "%s: seats counted == entitlements held in the target", l.Product)
	}
	for _, u := range accounts {
		if u.ExternalID == "" {
			continue // the pre-existing, unlinked accounts
		}
		linked, err := s.store.LinkedTo(s.ctx, org, u.ID)
		require.NoError(s.t, err)
		require.Equal(s.t, u.ExternalID, linked, "account %s (%s) is linked", u.ID, u.UserName)
	}
	return accounts
}

func activeWith(accounts map[string]*scim.User, product string) int {
	n := 0
	for _, u := range accounts {
		if u.Active && slices.Contains(u.Products, product) {
			n++
		}
	}
	return n
}

func countLinked(accounts map[string]*scim.User) int {
	n := 0
	for _, u := range accounts {
		if u.ExternalID != "" {
			n++
		}
	}
	return n
}

// disableOneProvisioned disables, in the directory, an active provisioned demo user, and
// returns its account.
func (s *stack) disableOneProvisioned(accounts map[string]*scim.User) *scim.User {
	s.t.Helper()
	for _, e := range s.demo.Entries {
		mail := entryValue(e, "mail")
		for _, u := range accounts {
			if u.Active && u.ExternalID != "" && u.UserName == mail {
				conn, err := ldap.DialURL(s.ldapURL)
				require.NoError(s.t, err)
				defer conn.Close()
				require.NoError(s.t, conn.Bind(s.ldapBindDN, ldapSecret))
				m := ldap.NewModifyRequest(e.DN, nil)
				m.Replace("employeeType", []string{"disabled"})
				require.NoError(s.t, conn.Modify(m), fmt.Sprint("disable ", e.DN))
				return u
			}
		}
	}
	s.t.Fatal("no provisioned user to disable")
	return nil
}
