package config

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"
)

// Redacted stands in for the value of a secret setting.
const Redacted = "<redacted>"

// Setting describes one environment variable of a settings struct.
type Setting struct {
	// Name is the full variable name, e.g. SLUICE_KAFKA_BROKERS.
	Name string
	// Field is the Go path of the field, e.g. Kafka.Brokers.
	Field string
	// Type is a short human name of the value's type: string, bool, int,
	// duration, string list, ...
	Type string
	// Default is the default from the `env` tag, as written there.
	Default string
	// Value is the current value of the field in the struct passed to
	// Describe, formatted the way the variable is written (lists
	// comma-separated).
	Value string
	// Help is the `help` tag.
	Help     string
	Required bool
	// Secret is set by the tag `secret:"true"`. Default and Value of a secret
	// are Redacted when non-empty.
	Secret bool
}

// Describe lists the settings of cfg, a settings struct or a pointer to one
// (a nil pointer describes defaults only), in field order. Nested structs
// without an `env` key are walked, honouring `env:",prefix=P_"`. A struct
// field with an `env` key is a single setting decoded by its own decoder.
// Unexported fields and fields without an `env` tag are skipped.
//
// Tag parsing follows go-envconfig except that backslash escapes in tag
// options are not interpreted; Sluice does not use them.
func Describe(cfg any) []Setting {
	v := reflect.ValueOf(cfg)
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	for t.Kind() == reflect.Pointer {
		if v.IsValid() && !v.IsNil() {
			v = v.Elem()
		} else {
			v = reflect.Value{}
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []Setting
	describe(&out, t, v, Prefix, "")
	return out
}

func describe(out *[]Setting, t reflect.Type, v reflect.Value, prefix, path string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, hasTag := f.Tag.Lookup("env")
		key, opts := parseEnvTag(tag)
		var fv reflect.Value
		if v.IsValid() {
			fv = v.Field(i)
		}
		field := f.Name
		if path != "" {
			field = path + "." + f.Name
		}

		if st, ok := isStruct(f.Type); ok && key == "" {
			for fv.IsValid() && fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					fv = reflect.Value{}
				} else {
					fv = fv.Elem()
				}
			}
			describe(out, st, fv, prefix+opts.prefix, field)
			continue
		}
		if !hasTag || key == "" {
			continue
		}

		s := Setting{
			Name:     prefix + key,
			Field:    field,
			Type:     typeName(f.Type),
			Default:  opts.def,
			Help:     f.Tag.Get("help"),
			Required: opts.required,
			Secret:   f.Tag.Get("secret") == "true",
		}
		if fv.IsValid() {
			s.Value = formatValue(fv, opts.delimiter)
		}
		if s.Secret {
			if s.Default != "" {
				s.Default = Redacted
			}
			if s.Value != "" {
				s.Value = Redacted
			}
		}
		*out = append(*out, s)
	}
}

type envOpts struct {
	def       string
	prefix    string
	delimiter string
	required  bool
}

// parseEnvTag splits an `env` tag into key and the options Describe needs.
// As in go-envconfig, default= takes the rest of the tag, commas included.
func parseEnvTag(tag string) (string, envOpts) {
	opts := envOpts{delimiter: ","}
	key, rest, more := strings.Cut(tag, ",")
	key = strings.TrimSpace(key)
	for more {
		var seg string
		seg, rest, more = strings.Cut(rest, ",")
		trimmed := strings.TrimLeft(seg, " \t")
		lower := strings.ToLower(trimmed)
		switch {
		case strings.HasPrefix(lower, "default="):
			def := trimmed
			if more {
				def += "," + rest
			}
			opts.def = def[len("default="):]
			more = false
		case strings.HasPrefix(lower, "prefix="):
			opts.prefix = trimmed[len("prefix="):]
		case strings.HasPrefix(lower, "delimiter="):
			opts.delimiter = trimmed[len("delimiter="):]
		case strings.TrimSpace(lower) == "required":
			opts.required = true
		}
	}
	return key, opts
}

var durationType = reflect.TypeFor[time.Duration]()

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		return typeName(t.Elem()) + " list"
	case reflect.Map:
		return "map"
	default:
		if t.Name() != "" {
			return strings.ToLower(t.Name())
		}
		return t.Kind().String()
	}
}

func formatValue(v reflect.Value, delimiter string) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.CanInterface() {
		switch x := v.Interface().(type) {
		case fmt.Stringer:
			return x.String()
		case []byte:
			return string(x)
		}
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i), delimiter)
		}
		return strings.Join(parts, delimiter)
	case reflect.String:
		return v.String()
	default:
		return fmt.Sprint(v.Interface())
	}
}

// WriteUsage writes the settings of cfg as an aligned table for --help:
// variable, type, default and description. Secret defaults are never
// printed.
func WriteUsage(w io.Writer, cfg any) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tDESCRIPTION")
	for _, s := range Describe(cfg) {
		def := s.Default
		if def == "" {
			def = "-"
		}
		help := oneLine(s.Help)
		if s.Secret {
			help += " (secret)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Type, def, help)
	}
	return tw.Flush()
}

// WriteMarkdown writes the settings of cfg as a Markdown table
// (| Variable | Default | Description |) for the README. Secret defaults are
// never printed.
func WriteMarkdown(w io.Writer, cfg any) error {
	var b strings.Builder
	b.WriteString("| Variable | Default | Description |\n|---|---|---|\n")
	for _, s := range Describe(cfg) {
		def := ""
		if s.Default != "" {
			def = "`" + mdCode(s.Default) + "`"
		}
		help := mdCell(oneLine(s.Help))
		if s.Secret {
			help += " (secret)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, def, help)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// LogValue returns the current values of cfg as a slog group keyed by
// variable name, with secrets redacted, for a startup log line:
//
//	log.Info("starting", "config", config.LogValue(cfg))
func LogValue(cfg any) slog.Value {
	settings := Describe(cfg)
	attrs := make([]slog.Attr, 0, len(settings))
	for _, s := range settings {
		attrs = append(attrs, slog.String(s.Name, s.Value))
	}
	return slog.GroupValue(attrs...)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// mdCell escapes text for a Markdown table cell: pipes end cells, and
// angle brackets would start HTML (help texts say <tenant>).
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", `\<`, ">", `\>`).Replace(s)
}

// mdCode escapes text for a code span in a table cell, where only the pipe
// needs escaping.
func mdCode(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
