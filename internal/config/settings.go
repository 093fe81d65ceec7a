package config

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a setting's value.
type Kind string

// Kinds.
const (
	KindString   Kind = "string"
	KindInt      Kind = "int"
	KindFloat    Kind = "float"
	KindBool     Kind = "bool"
	KindDuration Kind = "duration"
)

// Setting describes one setting. The worker's flags (Go's flag package) and the starter's global
// flags (cobra) are both generated from these descriptors, so names, environment variables,
// defaults and validation are the same everywhere.
type Setting struct {
	Flag    string // without dashes; "" for a secret, which never is a flag
	Env     string // environment variable, used when the flag is not given
	Default string // as it would be written in the environment; "" for none
	Help    string
	Kind    Kind
	// Secret settings are read only from the environment (or a file setting), never from flags,
	// and are never shown nor bound to a field: see Secret.
	Secret bool
	// Redacted settings may carry a password (URLs): help and errors show them with the
	// password hidden (see Redact).
	Redacted bool
}

// entry is a setting bound to its destination field.
type entry struct {
	Setting
	ptr any // *string, *int, *float64, *bool or *time.Duration; nil for secrets
	// keepEmpty makes an empty variable a value instead of unset (an address that turns a
	// feature off).
	keepEmpty bool
	check     func() error // optional validation of the parsed value (the error does not name the setting)
}

// Settings is a group of settings bound to the fields of a configuration struct. Bind it to a
// flag set (BindFlags, BindPFlags) or not at all, then call Load.
type Settings struct {
	entries []entry
	changed func(flag string) bool // nil when not bound to flags
}

// List returns the descriptors of the group, secrets included.
func (s *Settings) List() []Setting {
	out := make([]Setting, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.Setting
	}
	return out
}

// registrar is what both Go's *flag.FlagSet and pflag's *pflag.FlagSet (cobra) offer.
type registrar interface {
	StringVar(p *string, name, value, usage string)
	IntVar(p *int, name string, value int, usage string)
	Float64Var(p *float64, name string, value float64, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// PFlagSet is the part of pflag's *pflag.FlagSet (cobra's flags) that BindPFlags uses.
type PFlagSet interface {
	registrar
	Changed(name string) bool
}

// BindFlags registers the group's flags on fs (Go's flag package).
func (s *Settings) BindFlags(fs *flag.FlagSet) {
	s.register(fs)
	s.changed = func(name string) bool {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
		return set
	}
}

// BindPFlags registers the group's flags on fs, e.g. a cobra command's PersistentFlags().
func (s *Settings) BindPFlags(fs PFlagSet) {
	s.register(fs)
	s.changed = fs.Changed
}

// register adds one flag per non-secret setting. Its default, shown by help, is the
// environment's value when that is set and valid (a password in it hidden), else the built-in
// default. A bad environment value is reported by Load unless the flag overrides it.
func (s *Settings) register(r registrar) {
	for _, e := range s.entries {
		if e.Flag == "" || e.ptr == nil {
			continue
		}
		usage := e.Help + " (env " + e.Env + ")"
		text := e.Default
		if v, ok := lookupEnv(e.Env); ok {
			if _, err := parse(e.Kind, v); err == nil {
				text = v
			}
		}
		v, err := parse(e.Kind, text)
		if err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", e.Env, err))
		}
		switch p := e.ptr.(type) {
		case *string:
			shown := text
			if e.Redacted {
				shown = Redact(shown)
			}
			// Registered with the shown value (help prints it), then set to the real one.
			r.StringVar(p, e.Flag, shown, usage)
			*p = text
		case *int:
			r.IntVar(p, e.Flag, v.(int), usage)
		case *float64:
			r.Float64Var(p, e.Flag, v.(float64), usage)
		case *bool:
			r.BoolVar(p, e.Flag, v.(bool), usage)
		case *time.Duration:
			r.DurationVar(p, e.Flag, v.(time.Duration), usage)
		default:
			panic(fmt.Sprintf("config: %s: unsupported field type %T", e.Env, e.ptr))
		}
	}
}

// Load sets every field of the group: from its flag when given, else from its environment
// variable when set, else from its default. A value that does not parse is an error naming the
// variable and the value (LDAP_PAGE_SIZE: "abc" is not an integer), never a silent default; so
// is a value a setting's validation rejects (naming the flag or the variable it came from).
func (s *Settings) Load() error {
	for _, e := range s.entries {
		if e.ptr == nil {
			continue
		}
		source := e.Env
		if e.Flag != "" && s.changed != nil && s.changed(e.Flag) {
			source = "--" + e.Flag
		} else {
			text := e.Default
			if v, ok := lookupEnv(e.Env); ok {
				text = v
			} else if v, ok := os.LookupEnv(e.Env); ok && e.keepEmpty {
				text = v
			}
			v, err := parse(e.Kind, text)
			if err != nil {
				if e.Redacted {
					text = Redact(text)
				}
				return fmt.Errorf("%s: %q %v", e.Env, text, err)
			}
			assign(e.ptr, v)
		}
		if e.check != nil {
			if err := e.check(); err != nil {
				return fmt.Errorf("%s: %w", source, err)
			}
		}
	}
	return nil
}

// lookupEnv treats an empty variable as unset.
func lookupEnv(key string) (string, bool) {
	v := os.Getenv(key)
	return v, v != ""
}

// parse converts text to the kind's Go value. Its error completes `"<text>" ...`.
func parse(k Kind, text string) (any, error) {
	t := strings.TrimSpace(text)
	switch k {
	case KindString:
		return text, nil
	case KindInt:
		if t == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(t)
		if err != nil {
			return nil, fmt.Errorf("is not an integer")
		}
		return n, nil
	case KindFloat:
		if t == "" {
			return 0.0, nil
		}
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("is not a number")
		}
		return f, nil
	case KindBool:
		if t == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(t)
		if err != nil {
			return nil, fmt.Errorf("is not a boolean (true or false)")
		}
		return b, nil
	case KindDuration:
		if t == "" {
			return time.Duration(0), nil
		}
		d, err := time.ParseDuration(t)
		if err != nil {
			return nil, fmt.Errorf("is not a duration (e.g. 30s, 15m)")
		}
		return d, nil
	}
	return nil, fmt.Errorf("has an unknown kind %q", k)
}

func assign(ptr, v any) {
	switch p := ptr.(type) {
	case *string:
		*p = v.(string)
	case *int:
		*p = v.(int)
	case *float64:
		*p = v.(float64)
	case *bool:
		*p = v.(bool)
	case *time.Duration:
		*p = v.(time.Duration)
	}
}

// Table constructors, so each setting is one line in config.go.

func emptyIsValue(e entry) entry {
	e.keepEmpty = true
	return e
}

func str(p *string, flag, env, def, help string) entry {
	return entry{Setting: Setting{Flag: flag, Env: env, Default: def, Help: help, Kind: KindString}, ptr: p}
}

func urlSetting(p *string, flag, env, help string, check func() error) entry {
	return entry{Setting: Setting{Flag: flag, Env: env, Help: help, Kind: KindString, Redacted: true}, ptr: p, check: check}
}

func integer(p *int, flag, env string, def int, help string, check func() error) entry {
	return entry{Setting: Setting{Flag: flag, Env: env, Default: strconv.Itoa(def), Help: help, Kind: KindInt}, ptr: p, check: check}
}

func float(p *float64, flag, env string, def float64, help string, check func() error) entry {
	return entry{Setting: Setting{Flag: flag, Env: env, Default: strconv.FormatFloat(def, 'f', -1, 64), Help: help, Kind: KindFloat},
		ptr: p, check: check}
}

func boolean(p *bool, flag, env, help string) entry {
	return entry{Setting: Setting{Flag: flag, Env: env, Default: "false", Help: help, Kind: KindBool}, ptr: p}
}

// booleanOn is a boolean that is true unless turned off (--flag=false, ENV=false).
func booleanOn(p *bool, flag, env, help string) entry {
	return entry{Setting: Setting{Flag: flag, Env: env, Default: "true", Help: help, Kind: KindBool}, ptr: p}
}

func secret(env, help string) entry {
	return entry{Setting: Setting{Env: env, Help: help, Kind: KindString, Secret: true}}
}

func withCheck(e entry, check func() error) entry {
	e.check = check
	return e
}

// Checks.

func atLeast(p *int, min int) func() error {
	return func() error {
		if *p < min {
			return fmt.Errorf("must be %d or more, got %d", min, *p)
		}
		return nil
	}
}

func between(p *int, min, max int) func() error {
	return func() error {
		if *p < min || *p > max {
			return fmt.Errorf("must be between %d and %d, got %d", min, max, *p)
		}
		return nil
	}
}

func oneOf(p *string, values ...string) func() error {
	return func() error {
		for _, v := range values {
			if *p == v {
				return nil
			}
		}
		return fmt.Errorf("must be %s, got %q", strings.Join(values, " or "), *p)
	}
}

func notBlank(p *string) func() error {
	return func() error {
		if strings.TrimSpace(*p) == "" {
			return fmt.Errorf("must not be empty")
		}
		return nil
	}
}
