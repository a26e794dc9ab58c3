package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// ParseFlags parses the flags in args into fs and returns the positional
// arguments, in order. Unlike fs.Parse it accepts flags anywhere, so that
// "search --tenant shop level:error --size 2" means what it says; "--"
// ends the flags, so that an argument may start with a dash. A flag is
// written -name or --name, its value after "=" or as the next word (a
// boolean flag takes a value only after "="). A lone "-" is an argument
// (stdin, by convention).
//
// -h, -help and --help return flag.ErrHelp unless fs defines them. An
// unknown flag is an error suggesting the closest defined one.
func ParseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			pos = append(pos, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg[1:], "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			if isHelp("-"+name) || isHelp("--"+name) {
				return nil, flag.ErrHelp
			}
			return nil, unknownFlag(fs, arg, name)
		}
		switch {
		case hasValue:
		case isBool(f):
			value = "true"
		case i+1 < len(args):
			i++
			value = args[i]
		default:
			return nil, fmt.Errorf("flag %s needs a value", Dashed(name))
		}
		if err := fs.Set(name, value); err != nil {
			return nil, fmt.Errorf("invalid value %q for %s: %v", value, Dashed(name), err)
		}
	}
	return pos, nil
}

func unknownFlag(fs *flag.FlagSet, arg, name string) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if !hidden(f) {
			names = append(names, f.Name)
		}
	})
	msg := "unknown flag " + arg
	if s := Suggest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", Dashed(s))
	} else {
		msg += " (an argument that starts with a dash goes after --)"
	}
	return errors.New(msg)
}

// Dashed writes a flag's name the way help shows it: -n for one letter,
// --name otherwise.
func Dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// isBool reports whether f is a boolean flag (one that needs no value).
func isBool(f *flag.Flag) bool { return isBoolValue(f.Value) }

func isBoolValue(v flag.Value) bool {
	b, ok := v.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// DeprecatedAlias defines old on fs as the former name of the flag now,
// defined before it: old sets now's value, help, completion and "did you
// mean" leave it out, and a command that is given it runs after a one-line
// warning on stderr naming now. Giving both names is a usage error.
func DeprecatedAlias(fs *flag.FlagSet, old, now string) {
	f := fs.Lookup(now)
	if f == nil {
		panic("cli: DeprecatedAlias of " + old + ": no flag " + now)
	}
	fs.Var(&aliasValue{Value: f.Value, now: now}, old, "deprecated: "+Dashed(now))
}

// aliasValue is the value of a flag's deprecated name: its flag's own.
type aliasValue struct {
	flag.Value
	now string // the flag's name
}

func (a *aliasValue) IsBoolFlag() bool { return isBoolValue(a.Value) }

// hidden reports whether f is a deprecated name (DeprecatedAlias), which
// help and completion do not show.
func hidden(f *flag.Flag) bool {
	_, ok := f.Value.(*aliasValue)
	return ok
}

// deprecatedNames checks the deprecated flag names set in fs: a usage
// error (not wrapped) when one was given with its flag's name too, else a
// warning line for each on w.
func deprecatedNames(fs *flag.FlagSet, w io.Writer) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.Visit(func(f *flag.Flag) {
		a, ok := f.Value.(*aliasValue)
		switch {
		case !ok || err != nil:
		case given[a.now]:
			err = fmt.Errorf("%s is the deprecated name of %s: give %s only", Dashed(f.Name), Dashed(a.now), Dashed(a.now))
		default:
			fmt.Fprintf(w, "warning: %s is deprecated: use %s\n", Dashed(f.Name), Dashed(a.now))
		}
	})
	return err
}

// WriteFlags writes the flags of fs, sorted, the way flag.PrintDefaults
// does but with the dashes ParseFlags accepts and help shows (--name).
// Deprecated names (DeprecatedAlias) are left out.
func WriteFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if hidden(f) {
			return
		}
		valueName, usage := flag.UnquoteUsage(f)
		line := "  " + Dashed(f.Name)
		if valueName != "" && !isBool(f) {
			line += " " + valueName
		}
		line += "\n        " + strings.ReplaceAll(usage, "\n", "\n        ")
		if !isZeroValue(f) {
			def := f.DefValue
			if t := reflect.TypeOf(f.Value); t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.String {
				def = fmt.Sprintf("%q", def)
			}
			line += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintln(w, line)
	})
}

// isZeroValue reports whether f's default is its type's zero value, which
// help does not show.
func isZeroValue(f *flag.Flag) (zero bool) {
	t := reflect.TypeOf(f.Value)
	var z reflect.Value
	if t.Kind() == reflect.Pointer {
		z = reflect.New(t.Elem())
	} else {
		z = reflect.Zero(t)
	}
	v, ok := z.Interface().(flag.Value)
	if !ok {
		return f.DefValue == ""
	}
	defer func() {
		if recover() != nil {
			zero = false // a Value whose String needs more than its zero value
		}
	}()
	return f.DefValue == v.String()
}
