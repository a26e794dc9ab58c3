package cli

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"strings"
)

// WriteHelp writes the help of c, whose path on the command line is path
// (e.g. "sluice pipeline apply"): usage, description, subcommands or
// flags, examples and epilog.
func (c *Command) WriteHelp(w io.Writer, path string) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Usage: %s\n", c.synopsis(path))
	if d := strings.TrimSpace(c.Description); d != "" {
		fmt.Fprintf(bw, "\n%s\n", d)
	}
	if len(c.Subcommands) > 0 {
		fmt.Fprintf(bw, "\nCommands:\n")
		width := 0
		for _, s := range c.Subcommands {
			width = max(width, len(s.Name))
		}
		for _, s := range c.Subcommands {
			fmt.Fprintf(bw, "  %-*s  %s\n", width, s.Name, s.Summary)
		}
	} else if fs := c.flagSet(path); hasFlags(fs) {
		fmt.Fprintf(bw, "\nFlags:\n")
		WriteFlags(bw, fs)
	}
	if len(c.Examples) > 0 {
		fmt.Fprintf(bw, "\nExamples:\n")
		for _, e := range c.Examples {
			fmt.Fprintf(bw, "  %s\n", e)
		}
	}
	if len(c.Subcommands) > 0 {
		fmt.Fprintf(bw, "\nRun '%s <command> --help' for a command's flags and examples.\n", path)
	}
	if c.Epilog != nil {
		fmt.Fprintln(bw)
		c.Epilog(bw)
	}
	return bw.Flush()
}

// synopsis is the Usage line's text.
func (c *Command) synopsis(path string) string {
	switch {
	case len(c.Subcommands) > 0:
		return path + " <command> [flags]"
	case c.Usage != "":
		return path + " " + c.Usage
	case c.Args != "":
		return path + " [flags] " + c.Args
	}
	return path + " [flags]"
}

// flagSet returns a flag set with c's flags defined, for help and
// completion.
func (c *Command) flagSet(path string) *flag.FlagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.Flags != nil {
		c.Flags(fs)
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if !hidden(f) {
			n++
		}
	})
	return n > 0
}

// Walk calls fn for c and every command below it, parents first, with
// each one's path (c's own is c.Name).
func (c *Command) Walk(fn func(c *Command, path string)) {
	c.walk(c.Name, fn)
}

func (c *Command) walk(path string, fn func(*Command, string)) {
	fn(c, path)
	for _, s := range c.Subcommands {
		s.walk(path+" "+s.Name, fn)
	}
}
