// Package config loads Sluice settings from the environment and describes
// them for --help and the README.
//
// Every stage declares one struct of settings with go-envconfig `env` tags
// (names without the SLUICE_ prefix, which Load adds) and a `help` tag on
// every setting. A field tagged `secret:"true"` holds a credential: its value
// and its default are never returned by Describe and therefore never printed
// by WriteUsage, WriteMarkdown or LogValue.
//
//	type Config struct {
//		Kafka     kafka.Config
//		Telemetry telemetry.Config
//		BatchSize int `env:"BATCH_SIZE, default=500" help:"Records per bulk request."`
//	}
//
// Validation belongs to the stage (a Validate method that joins every problem
// with Problems, each naming the variable at fault); Load only decodes.
package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Prefix is prepended to every variable name declared in an `env` tag.
const Prefix = "SLUICE_"

// Var returns the full name of the variable declared as name in an `env` tag
// of a top-level (not prefix=-nested) setting: Var("KAFKA_BROKERS") is
// "SLUICE_KAFKA_BROKERS". Validate methods use it to name the variable at
// fault.
func Var(name string) string { return Prefix + name }

// Load fills dst, a pointer to a settings struct, from the process
// environment. Variables are looked up with Prefix prepended. Fields that
// already hold a non-zero value are left alone (go-envconfig's rule), so set
// caller defaults after Load, not before.
//
// A value that does not parse is reported as a *Problem naming the variable.
func Load(ctx context.Context, dst any) error {
	return LoadFrom(ctx, dst, envconfig.OsLookuper())
}

// LoadFrom is Load with variables taken from l instead of the process
// environment. l is asked for full names (with Prefix), so tests can use
// envconfig.MapLookuper(map[string]string{"SLUICE_KAFKA_BROKERS": ...}).
func LoadFrom(ctx context.Context, dst any, l envconfig.Lookuper) error {
	// envconfig names the Go field in its errors, which means nothing to an
	// operator. Every field with an env key is looked up just before it is
	// decoded, so the last name looked up is the variable a decode error is
	// about.
	rec := &recordingLookuper{l: l}
	err := envconfig.ProcessWith(ctx, &envconfig.Config{
		Target:   dst,
		Lookuper: envconfig.PrefixLookuper(Prefix, rec),
	})
	if err == nil {
		return nil
	}
	if rec.last == "" || !isDecodeError(err) {
		return fmt.Errorf("load configuration: %w", err)
	}
	return &Problem{Var: rec.last, Err: trimFieldPath(err, fieldPath(dst, rec.last))}
}

// recordingLookuper remembers the last name looked up. Unwrap hands
// envconfig the wrapped lookuper for expanding $VAR in defaults, so those
// lookups are not recorded.
type recordingLookuper struct {
	l    envconfig.Lookuper
	last string
}

func (r *recordingLookuper) Lookup(key string) (string, bool) {
	r.last = key
	return r.l.Lookup(key)
}

func (r *recordingLookuper) Unwrap() envconfig.Lookuper { return r.l }

// isDecodeError reports whether err is about a value rather than about the
// shape of the settings struct (a programming error) or a missing required
// variable (whose message already names it).
func isDecodeError(err error) bool {
	for _, e := range []error{
		envconfig.ErrInvalidEnvvarName,
		envconfig.ErrLookuperNil,
		envconfig.ErrMissingKey,
		envconfig.ErrMissingRequired,
		envconfig.ErrNoInitNotPtr,
		envconfig.ErrNotPtr,
		envconfig.ErrNotStruct,
		envconfig.ErrPrefixNotStruct,
		envconfig.ErrPrivateField,
		envconfig.ErrRecursivePointer,
		envconfig.ErrRecursiveStruct,
		envconfig.ErrRequiredAndDefault,
		envconfig.ErrUnknownOption,
	} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

// fieldPath returns the Go field names leading to the setting called name.
func fieldPath(dst any, name string) []string {
	for _, s := range Describe(dst) {
		if s.Name == name {
			return strings.Split(s.Field, ".")
		}
	}
	return nil
}

// trimFieldPath removes the "Field: " wrappers envconfig adds, one per struct
// level, and nothing else: an error of another shape is returned unchanged.
func trimFieldPath(err error, path []string) error {
	for _, name := range path {
		inner := errors.Unwrap(err)
		if inner == nil || err.Error() != name+": "+inner.Error() {
			return err
		}
		err = inner
	}
	return err
}

// Problem is one invalid setting.
type Problem struct {
	// Var is the full variable name, e.g. SLUICE_KAFKA_BROKERS.
	Var string
	Err error
}

func (p *Problem) Error() string { return p.Var + ": " + p.Err.Error() }
func (p *Problem) Unwrap() error { return p.Err }

// Problems collects every problem of a configuration so that an operator
// sees all of them at once. The zero value is ready to use; it is not safe
// for concurrent use.
//
//	var p config.Problems
//	if len(c.Brokers) == 0 {
//		p.Add(config.Var("KAFKA_BROKERS"), "must not be empty")
//	}
//	return p.Err()
type Problems struct {
	errs []error
}

// Add records a problem with the variable name. format and args are as for
// fmt.Errorf, so %w may wrap a cause.
func (p *Problems) Add(name, format string, args ...any) {
	p.errs = append(p.errs, &Problem{Var: name, Err: fmt.Errorf(format, args...)})
}

// AddErr records err (if non-nil) as a problem with the variable name.
func (p *Problems) AddErr(name string, err error) {
	if err != nil {
		p.errs = append(p.errs, &Problem{Var: name, Err: err})
	}
}

// Merge records every problem of err, which is typically the result of a
// nested settings struct's Validate. A nil err adds nothing.
func (p *Problems) Merge(err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		p.errs = append(p.errs, j.Unwrap()...)
		return
	}
	p.errs = append(p.errs, err)
}

// Positive records a problem for each duration that is not positive;
// durations maps the variable names (without the SLUICE_ prefix) to values.
// Names are checked in sorted order, so messages come in a stable order.
func (p *Problems) Positive(durations map[string]time.Duration) {
	for _, name := range slices.Sorted(maps.Keys(durations)) {
		if d := durations[name]; d <= 0 {
			p.Add(Var(name), "must be positive, got %s", d)
		}
	}
}

// Err returns nil if no problem was recorded, else errors.Join of all of
// them in the order added: one line per problem. Each is a *Problem that
// errors.As can extract.
func (p *Problems) Err() error {
	return errors.Join(p.errs...)
}

// isStruct reports whether t (after pointers) is a struct, and returns it.
func isStruct(t reflect.Type) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, t.Kind() == reflect.Struct
}
