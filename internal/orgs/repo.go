package orgs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/usersync/usersync/internal/vocab"
)

// ErrNotFound is the error (errors.Is) of an organization that has no settings.
var ErrNotFound = errors.New("no settings")

// ErrConflict is the error of a write based on a version that is no longer the current one.
var ErrConflict = errors.New("the organization's settings changed meanwhile")

// Sealed is a secret as stored: the key that sealed it and the ciphertext.
type Sealed struct {
	KeyID      string
	Ciphertext []byte
}

// Record is an organization's current settings as stored: settings in clear, secrets sealed
// (by field, FieldBindPassword and FieldToken; a secret not set is absent).
type Record struct {
	Org      string
	Version  int64
	Settings Settings
	Secrets  map[string]Sealed
}

// RecordStore keeps the records (internal/store implements it). Each write is one
// transaction with its history event. Reads of an organization without settings, or deleted,
// return an error wrapping ErrNotFound.
type RecordStore interface {
	OrgRecord(ctx context.Context, org string) (Record, error)
	OrgVersion(ctx context.Context, org string) (int64, error)
	// OrgRecords lists every organization's record, by name.
	OrgRecords(ctx context.Context) ([]Record, error)
	// PutOrgRecord stores r as the organization's next version, provided its current version
	// is still prev (0: it has none), else ErrConflict; it returns the new version, also added
	// to e's details as "version". Versions are never reused, also after a delete.
	PutOrgRecord(ctx context.Context, r Record, prev int64, e vocab.Event) (int64, error)
	// ResealOrgSecrets replaces the sealed secrets of version (the settings and the version do
	// not change), else ErrConflict.
	ResealOrgSecrets(ctx context.Context, org string, version int64, secrets map[string]Sealed, e vocab.Event) error
	DeleteOrgRecord(ctx context.Context, org string, e vocab.Event) error
}

// Repo reads and writes organizations' settings, sealing and opening their secrets with Keys.
// Keys may be nil while no secret is read or written.
type Repo struct {
	Store RecordStore
	Keys  *Keyring
}

// errNoKeys is the error of a secret to seal or open without a keyring.
func errNoKeys(org string) error {
	return fmt.Errorf("organization %s: its secrets need the secrets key file, which is not set (USERSYNC_SECRETS_KEY_FILE, --secrets-key-file)", org)
}

// Get returns the organization's current settings with its secrets opened.
func (r Repo) Get(ctx context.Context, org string) (Org, error) {
	rec, err := r.Store.OrgRecord(ctx, org)
	if err != nil {
		return Org{}, err
	}
	s, err := r.open(rec)
	if err != nil {
		return Org{}, err
	}
	return Org{Name: rec.Org, Version: rec.Version, Settings: rec.Settings, Secrets: s}, nil
}

// Version is the organization's current version, without reading its settings.
func (r Repo) Version(ctx context.Context, org string) (int64, error) {
	return r.Store.OrgVersion(ctx, org)
}

// SecretsSet says which secrets an organization has.
type SecretsSet struct {
	BindPassword bool `json:"bindPassword"`
	Token        bool `json:"token"`
}

// Inspect returns the organization's settings without its secrets, and which secrets are
// set; it needs no key.
func (r Repo) Inspect(ctx context.Context, org string) (Org, SecretsSet, error) {
	rec, err := r.Store.OrgRecord(ctx, org)
	if err != nil {
		return Org{}, SecretsSet{}, err
	}
	_, pw := rec.Secrets[FieldBindPassword]
	_, tok := rec.Secrets[FieldToken]
	return Org{Name: rec.Org, Version: rec.Version, Settings: rec.Settings}, SecretsSet{BindPassword: pw, Token: tok}, nil
}

// List returns every organization's settings, without secrets, by name.
func (r Repo) List(ctx context.Context) ([]Org, error) {
	recs, err := r.Store.OrgRecords(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Org, len(recs))
	for i, rec := range recs {
		out[i] = Org{Name: rec.Org, Version: rec.Version, Settings: rec.Settings}
	}
	return out, nil
}

// Validate checks o as Put does: its name, settings and that the secrets its settings need
// are there.
func (o Org) Validate() error {
	if err := ValidateName(o.Name); err != nil {
		return err
	}
	if err := o.Settings.Validate(); err != nil {
		return fmt.Errorf("organization %s: %w", o.Name, err)
	}
	if o.Settings.Directory.BindDN != "" && o.Secrets.BindPassword == "" {
		return fmt.Errorf("organization %s: %s: not set, and directory.bindDN %q needs it", o.Name, FieldBindPassword, o.Settings.Directory.BindDN)
	}
	return nil
}

// Put validates o and stores it, secrets sealed, as the organization's next version with one
// history event, and returns that version. When o's settings and secrets are those of the
// current version, it writes nothing and returns the current version.
func (r Repo) Put(ctx context.Context, actor string, o Org) (int64, error) {
	if err := o.Validate(); err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		v, err := r.put(ctx, actor, o)
		if errors.Is(err, ErrConflict) && attempt < 3 {
			continue // another writer went first: compare with its version
		}
		return v, err
	}
}

func (r Repo) put(ctx context.Context, actor string, o Org) (int64, error) {
	var prev int64
	var old Settings
	var oldSecrets Secrets
	cur, err := r.Store.OrgRecord(ctx, o.Name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return 0, err
	default:
		prev, old = cur.Version, cur.Settings
		// A secret that does not open (its key gone) counts as changed: the put replaces it.
		oldSecrets = r.openLenient(cur)
	}
	changed := settingsDiff(old, o.Settings)
	if oldSecrets.BindPassword != o.Secrets.BindPassword {
		changed = append(changed, FieldBindPassword)
	}
	if oldSecrets.Token != o.Secrets.Token {
		changed = append(changed, FieldToken)
	}
	if prev > 0 && len(changed) == 0 {
		return prev, nil
	}
	rec := Record{Org: o.Name, Settings: o.Settings, Secrets: map[string]Sealed{}}
	for field, plain := range map[string]string{FieldBindPassword: o.Secrets.BindPassword, FieldToken: o.Secrets.Token} {
		if plain == "" {
			continue
		}
		if r.Keys == nil {
			return 0, errNoKeys(o.Name)
		}
		id, ct, err := r.Keys.Seal(o.Name, field, plain)
		if err != nil {
			return 0, err
		}
		rec.Secrets[field] = Sealed{KeyID: id, Ciphertext: ct}
	}
	action := "organization settings changed"
	if prev == 0 {
		action = "organization settings created"
	}
	e := vocab.Event{Org: o.Name, Actor: actor, Type: vocab.EventSetting, Action: action, Details: map[string]any{
		"changed":  changed,
		"settings": o.Settings,
		"secrets":  map[string]string{FieldBindPassword: setOrNot(o.Secrets.BindPassword), FieldToken: setOrNot(o.Secrets.Token)},
	}}
	return r.Store.PutOrgRecord(ctx, rec, prev, e)
}

// Delete removes the organization's settings and secrets, with one history event.
func (r Repo) Delete(ctx context.Context, actor, org string) error {
	return r.Store.DeleteOrgRecord(ctx, org, vocab.Event{Org: org, Actor: actor, Type: vocab.EventSetting,
		Action: "organization settings deleted"})
}

// RotateKey seals again, under the keyring's current key, every secret sealed under another
// key, and returns the organizations it changed. The settings and versions do not change.
func (r Repo) RotateKey(ctx context.Context, actor string) ([]string, error) {
	if r.Keys == nil {
		return nil, errNoKeys("(all)")
	}
	recs, err := r.Store.OrgRecords(ctx)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, rec := range recs {
		for attempt := 0; ; attempt++ {
			resealed, err := r.reseal(ctx, actor, rec)
			if errors.Is(err, ErrConflict) && attempt < 3 {
				if rec, err = r.Store.OrgRecord(ctx, rec.Org); errors.Is(err, ErrNotFound) {
					break // deleted meanwhile
				} else if err == nil {
					continue
				}
			}
			if err != nil {
				return done, err
			}
			if resealed {
				done = append(done, rec.Org)
			}
			break
		}
	}
	return done, nil
}

func (r Repo) reseal(ctx context.Context, actor string, rec Record) (bool, error) {
	current := r.Keys.Current()
	if !slices.ContainsFunc(slices.Collect(maps.Values(rec.Secrets)), func(s Sealed) bool { return s.KeyID != current }) {
		return false, nil
	}
	out := map[string]Sealed{}
	var fields []string
	for _, field := range slices.Sorted(maps.Keys(rec.Secrets)) {
		s := rec.Secrets[field]
		plain, err := r.Keys.Open(rec.Org, field, s.KeyID, s.Ciphertext)
		if err != nil {
			return false, err
		}
		id, ct, err := r.Keys.Seal(rec.Org, field, plain)
		if err != nil {
			return false, err
		}
		out[field] = Sealed{KeyID: id, Ciphertext: ct}
		fields = append(fields, field)
	}
	e := vocab.Event{Org: rec.Org, Actor: actor, Type: vocab.EventSetting, Action: "organization secrets re-encrypted",
		Details: map[string]any{"keyId": current, "fields": fields, "version": rec.Version}}
	return true, r.Store.ResealOrgSecrets(ctx, rec.Org, rec.Version, out, e)
}

// open opens every secret of rec.
func (r Repo) open(rec Record) (Secrets, error) {
	var s Secrets
	for field, sealed := range rec.Secrets {
		if r.Keys == nil {
			return Secrets{}, errNoKeys(rec.Org)
		}
		plain, err := r.Keys.Open(rec.Org, field, sealed.KeyID, sealed.Ciphertext)
		if err != nil {
			return Secrets{}, err
		}
		switch field {
		case FieldBindPassword:
			s.BindPassword = plain
		case FieldToken:
			s.Token = plain
		}
	}
	return s, nil
}

// openLenient opens what it can; a secret that does not open (no keyring, its key gone)
// is a value no caller gives, so that it counts as changed.
func (r Repo) openLenient(rec Record) Secrets {
	var s Secrets
	for field, sealed := range rec.Secrets {
		plain := "\x00unreadable"
		if r.Keys != nil {
			if p, err := r.Keys.Open(rec.Org, field, sealed.KeyID, sealed.Ciphertext); err == nil {
				plain = p
			}
		}
		switch field {
		case FieldBindPassword:
			s.BindPassword = plain
		case FieldToken:
			s.Token = plain
		}
	}
	return s
}

// settingsDiff names the settings (JSON paths, e.g. directory.url) that differ.
func settingsDiff(a, b Settings) []string {
	fa, fb := flatten(a), flatten(b)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(fb)) {
		if fa[k] != fb[k] {
			out = append(out, k)
		}
	}
	return out
}

func flatten(s Settings) map[string]string {
	raw, _ := json.Marshal(s) // plain fields only
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if sub, ok := v.(map[string]any); ok {
			for k, x := range sub {
				walk(prefix+k+".", x)
			}
			return
		}
		out[prefix[:len(prefix)-1]] = fmt.Sprint(v)
	}
	walk("", m)
	return out
}
