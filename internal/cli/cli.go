// Package cli is the command-line plumbing of the sluice binary: one table
// of commands and subcommands (Command) from which dispatch, help, "did you
// mean" suggestions and shell completion scripts are all made, so that
// none of them can drift from the others, and a flag parser that accepts
// flags after positional arguments.
//
// Conventions it keeps for every command: help asked for (-h, --help,
// help <command>) goes to stdout and succeeds; a usage error (an unknown
// command or flag, a bad flag value, a wrong number of arguments) is one
// line on stderr with a hint naming the help to read, and exit status 2;
// any other error exits 1.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Action runs a command once its flags are parsed. args are the positional
// arguments, in order, with the flags taken out.
type Action func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Command is a command of the program, a subcommand, or the program itself
// (the root). A command either has Subcommands or defines Flags (and so
// its Action), not both.
type Command struct {
	// Name is what selects the command on the command line.
	Name string
	// Summary is one line for the parent's list of commands.
	Summary string
	// Usage is the synopsis after the command's path in the help's Usage
	// line, e.g. "--tenant NAME [flags]". Empty: "[flags]" followed by Args.
	Usage string
	// Args names the positional arguments in the default Usage, e.g.
	// "QUERY..." or "TENANT".
	Args string
	// MinArgs and MaxArgs bound the number of positional arguments; a
	// negative MaxArgs sets no upper bound. The zero values take none.
	MinArgs, MaxArgs int
	// Description is the help's text between the Usage line and the
	// flags: what the command does, in paragraphs.
	Description string
	// Examples are command lines shown in the help, one per element, each
	// optionally followed by "  # comment".
	Examples []string
	// Epilog writes what the help shows after the flags and examples
	// (the environment variables a command reads, say). Optional.
	Epilog func(w io.Writer)
	// Flags defines the command's flags on fs and returns the action to
	// run with their values. It is also called with a throwaway flag set
	// for help and completion, so it must do nothing but define flags.
	Flags func(fs *flag.FlagSet) Action
	// Subcommands are the commands below this one.
	Subcommands []*Command
	// ArgWords are the words shell completion offers for positional
	// arguments (e.g. bash, zsh, fish). Without them, completion falls back
	// to file names.
	ArgWords []string
	// Unavailable, when set, is the error the command fails with whatever
	// its arguments: a command this build leaves out.
	Unavailable string
}

// UsageError is a mistake in how a command was called. Report prints it in
// one line with a hint to read the command's help, and exits 2.
type UsageError struct {
	// Path is the command's path, e.g. "sluice tail"; Run sets it.
	Path string
	Err  error
}

func (e *UsageError) Error() string {
	if _, rest, ok := strings.Cut(e.Path, " "); ok {
		return rest + ": " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a usage error: an Action returns it for arguments that do
// not fit (a missing flag, flags that exclude each other), and Run names
// the command.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Report writes err for a user on w and returns the process's exit status:
// 0 when err is nil, 2 for a usage error (followed by a hint line naming
// the help to read), 1 otherwise. prog prefixes the message.
func Report(w io.Writer, prog string, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(w, "%s: %v\n", prog, err)
	var ue *UsageError
	if errors.As(err, &ue) {
		path := ue.Path
		if path == "" {
			path = prog
		}
		fmt.Fprintf(w, "run '%s --help' for usage\n", path)
		return 2
	}
	return 1
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// Run runs the command args name, root being the program (its Name is the
// program's name). Help goes to stdout; errors are returned, usage errors as
// *UsageError, for Report.
func (root *Command) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, path, rest, err := root.resolve(args)
	var h *helpRequest
	if errors.As(err, &h) {
		return h.c.WriteHelp(stdout, h.path)
	}
	if err != nil {
		return err
	}
	return c.run(ctx, path, rest, stdout, stderr, false)
}

// Check parses args as Run would, without running anything: a command line
// that Check accepts is one Run would start. Tests use it to keep the
// examples of the help true.
func (root *Command) Check(args []string) error {
	c, path, rest, err := root.resolve(args)
	var h *helpRequest
	if errors.As(err, &h) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.run(context.Background(), path, rest, io.Discard, io.Discard, true)
}

// resolve walks args down the command tree to a command without
// subcommands, and returns it with its path ("sluice pipeline apply") and
// the words left for its flags and arguments. Words asking for help are
// returned as a *helpRequest error.
func (root *Command) resolve(args []string) (*Command, string, []string, error) {
	c, path := root, root.Name
	for len(c.Subcommands) > 0 {
		if len(args) == 0 {
			return nil, "", nil, &UsageError{Path: path, Err: fmt.Errorf("missing command: one of %s", strings.Join(c.names(), ", "))}
		}
		if isHelp(args[0]) || args[0] == "help" {
			return nil, "", nil, helpFor(c, path, args[1:])
		}
		sub := c.Find(args[0])
		if sub == nil {
			msg := fmt.Sprintf("unknown command %q", args[0])
			if name := strings.TrimLeft(args[0], "-"); name != args[0] {
				msg = fmt.Sprintf("unknown flag %s: flags go after the command", args[0])
				// sluice --version means sluice version.
				s := Suggest(name, c.names())
				if c.Find(name) != nil {
					s = name
				}
				if s != "" {
					msg += fmt.Sprintf(" (did you mean '%s %s'?)", path, s)
				}
			} else if s := Suggest(args[0], c.names()); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			return nil, "", nil, &UsageError{Path: path, Err: errors.New(msg)}
		}
		c, path, args = sub, path+" "+sub.Name, args[1:]
	}
	return c, path, args, nil
}

// helpRequest is returned by resolve when the words ask for the help of a
// command: Run prints it.
type helpRequest struct {
	c    *Command
	path string
}

func (h *helpRequest) Error() string { return "help requested" }

// helpFor resolves "help [words...]" below c to the command whose help is
// asked for.
func helpFor(c *Command, path string, words []string) error {
	for _, w := range words {
		if isHelp(w) {
			continue
		}
		sub := c.Find(w)
		if sub == nil {
			msg := fmt.Sprintf("no help for unknown command %q", w)
			if s := Suggest(w, c.names()); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			return &UsageError{Path: path, Err: errors.New(msg)}
		}
		c, path = sub, path+" "+sub.Name
	}
	return &helpRequest{c: c, path: path}
}

// Find returns the subcommand named name, nil if there is none.
func (c *Command) Find(name string) *Command {
	for _, s := range c.Subcommands {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (c *Command) names() []string {
	out := make([]string, len(c.Subcommands))
	for i, s := range c.Subcommands {
		out[i] = s.Name
	}
	return out
}

// run parses the flags of a command without subcommands and runs its
// action, unless checkOnly.
func (c *Command) run(ctx context.Context, path string, args []string, stdout, stderr io.Writer, checkOnly bool) error {
	if c.Unavailable != "" {
		if slices.ContainsFunc(args, isHelp) {
			if checkOnly {
				return nil
			}
			return c.WriteHelp(stdout, path)
		}
		return errors.New(c.Unavailable)
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	action := Action(func(context.Context, []string, io.Writer, io.Writer) error { return nil })
	if c.Flags != nil {
		action = c.Flags(fs)
	}
	pos, err := ParseFlags(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		if checkOnly {
			return nil
		}
		return c.WriteHelp(stdout, path)
	case err != nil:
		return &UsageError{Path: path, Err: err}
	case len(pos) < c.MinArgs, c.MaxArgs >= 0 && len(pos) > c.MaxArgs:
		return &UsageError{Path: path, Err: c.argCountError(pos)}
	}
	if err := deprecatedNames(fs, stderr); err != nil {
		return &UsageError{Path: path, Err: err}
	}
	if checkOnly {
		return nil
	}
	err = action(ctx, pos, stdout, stderr)
	var ue *UsageError
	if errors.As(err, &ue) && ue.Path == "" {
		ue.Path = path
	}
	return err
}

func (c *Command) argCountError(pos []string) error {
	what := c.Args
	if what == "" {
		what = "arguments"
	}
	switch {
	case c.MaxArgs == 0:
		return fmt.Errorf("unexpected argument %q: %s takes none (flags start with --)", pos[0], c.Name)
	case len(pos) < c.MinArgs && len(pos) == 0:
		return fmt.Errorf("missing %s", what)
	case len(pos) < c.MinArgs:
		return fmt.Errorf("want %s, got %d argument(s)", what, len(pos))
	}
	return fmt.Errorf("unexpected argument %q after %s", pos[c.MaxArgs], what)
}
