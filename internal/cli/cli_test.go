package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testProgram is a small program: a group with two commands, one taking
// an argument and flags of every kind.
func testProgram(ran *[]string) *Command {
	var root *Command
	root = &Command{
		Name:        "prog",
		Description: "Prog does things.",
		Examples:    []string{"prog get --size 2 thing"},
		Subcommands: []*Command{
			{
				Name: "get", Summary: "get a thing", Args: "NAME...", MinArgs: 1, MaxArgs: -1,
				Description: "Gets things.",
				Examples:    []string{"prog get --size 2 thing   # two of them"},
				Epilog:      func(w io.Writer) { fmt.Fprintln(w, "Settings: PROG_URL") },
				Flags: func(fs *flag.FlagSet) Action {
					size := fs.Int("size", 10, "how many `N`")
					asJSON := fs.Bool("json", false, "print JSON")
					since := fs.Duration("since", time.Hour, "how far back")
					file := fs.String("f", "", "a file")
					return func(_ context.Context, args []string, stdout, _ io.Writer) error {
						*ran = append(*ran, fmt.Sprintf("get size=%d json=%t since=%s f=%s args=%q", *size, *asJSON, *since, *file, args))
						return nil
					}
				},
			},
			{
				Name: "group", Summary: "a group",
				Subcommands: []*Command{{
					Name: "leaf", Summary: "a leaf",
					Flags: func(fs *flag.FlagSet) Action {
						yes := fs.Bool("yes", false, "really")
						return func(context.Context, []string, io.Writer, io.Writer) error {
							if !*yes {
								return Usagef("add --yes")
							}
							*ran = append(*ran, "leaf")
							return nil
						}
					},
				}},
			},
		},
	}
	root.Subcommands = append(root.Subcommands, CompletionCommand("prog", func() *Command { return root }))
	return root
}

// runProg runs the test program and returns its stdout, stderr and exit
// status, as the binary would show them.
func runProg(t *testing.T, args ...string) (string, string, int, []string) {
	t.Helper()
	var ran []string
	var stdout, stderr bytes.Buffer
	err := testProgram(&ran).Run(t.Context(), args, &stdout, &stderr)
	code := Report(&stderr, "prog", err)
	return stdout.String(), stderr.String(), code, ran
}

func TestParseFlagsInterspersed(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "thing", "--size", "2"}, `get size=2 json=false since=1h0m0s f= args=["thing"]`},
		{[]string{"get", "a", "--json", "b", "-size=3", "c"}, `get size=3 json=true since=1h0m0s f= args=["a" "b" "c"]`},
		{[]string{"get", "--json=false", "--since", "5m", "x"}, `get size=10 json=false since=5m0s f= args=["x"]`},
		{[]string{"get", "-f", "-", "x"}, `get size=10 json=false since=1h0m0s f=- args=["x"]`},
		{[]string{"get", "x", "--", "--size", "-y", "-"}, `get size=10 json=false since=1h0m0s f= args=["x" "--size" "-y" "-"]`},
		{[]string{"get", "-", "x"}, `get size=10 json=false since=1h0m0s f= args=["-" "x"]`},
	} {
		_, stderr, code, ran := runProg(t, tt.args...)
		if code != 0 || len(ran) != 1 || ran[0] != tt.want {
			t.Errorf("%q: exit %d, ran %q, stderr %q; want %q", tt.args, code, ran, stderr, tt.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "x", "--sise", "2"}, "prog: get: unknown flag --sise (did you mean --size?)\nrun 'prog get --help' for usage\n"},
		{[]string{"get", "-x"}, "prog: get: unknown flag -x (an argument that starts with a dash goes after --)\nrun 'prog get --help' for usage\n"},
		{[]string{"get", "x", "--size"}, "prog: get: flag --size needs a value\nrun 'prog get --help' for usage\n"},
		{[]string{"get", "x", "--size", "many"}, "prog: get: invalid value \"many\" for --size: parse error\nrun 'prog get --help' for usage\n"},
		{[]string{"get"}, "prog: get: missing NAME...\nrun 'prog get --help' for usage\n"},
		{[]string{"gte"}, "prog: unknown command \"gte\" (did you mean get?)\nrun 'prog --help' for usage\n"},
		{[]string{"nothing"}, "prog: unknown command \"nothing\"\nrun 'prog --help' for usage\n"},
		{[]string{"--get"}, "prog: unknown flag --get: flags go after the command (did you mean 'prog get'?)\nrun 'prog --help' for usage\n"},
		{[]string{"-x"}, "prog: unknown flag -x: flags go after the command\nrun 'prog --help' for usage\n"},
		{nil, "prog: missing command: one of get, group, completion\nrun 'prog --help' for usage\n"},
		{[]string{"group"}, "prog: group: missing command: one of leaf\nrun 'prog group --help' for usage\n"},
		{[]string{"group", "leef"}, "prog: group: unknown command \"leef\" (did you mean leaf?)\nrun 'prog group --help' for usage\n"},
		{[]string{"group", "leaf", "extra"}, "prog: group leaf: unexpected argument \"extra\": leaf takes none (flags start with --)\nrun 'prog group leaf --help' for usage\n"},
		{[]string{"group", "leaf"}, "prog: group leaf: add --yes\nrun 'prog group leaf --help' for usage\n"},
		{[]string{"completion", "bsh"}, "prog: completion: unknown shell \"bsh\": want one of bash, zsh, fish (did you mean bash?)\nrun 'prog completion --help' for usage\n"},
		{[]string{"help", "gt"}, "prog: no help for unknown command \"gt\" (did you mean get?)\nrun 'prog --help' for usage\n"},
	} {
		stdout, stderr, code, ran := runProg(t, tt.args...)
		if code != 2 || stderr != tt.want || stdout != "" || len(ran) != 0 {
			t.Errorf("%q: exit %d, stdout %q, ran %q, stderr:\n%s\nwant:\n%s", tt.args, code, stdout, ran, stderr, tt.want)
		}
	}
	if code := Report(io.Discard, "prog", errors.New("boom")); code != 1 {
		t.Errorf("a plain error exits %d, want 1", code)
	}
}

func TestHelp(t *testing.T) {
	wantGet := `Usage: prog get [flags] NAME...

Gets things.

Flags:
  -f string
        a file
  --json
        print JSON
  --since duration
        how far back (default 1h0m0s)
  --size N
        how many N (default 10)

Examples:
  prog get --size 2 thing   # two of them

Settings: PROG_URL
`
	for _, args := range [][]string{{"get", "--help"}, {"get", "x", "-h"}, {"help", "get"}, {"get", "-help"}} {
		stdout, stderr, code, ran := runProg(t, args...)
		if code != 0 || stderr != "" || stdout != wantGet || len(ran) != 0 {
			t.Errorf("%q: exit %d, stderr %q, ran %q, stdout:\n%s", args, code, stderr, ran, stdout)
		}
	}
	stdout, _, code, _ := runProg(t, "--help")
	for _, want := range []string{"Usage: prog <command> [flags]\n", "\nCommands:\n  get         get a thing\n  group       a group\n  completion  print a shell completion script",
		"\nExamples:\n  prog get --size 2 thing\n", "Run 'prog <command> --help'"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("prog --help lacks %q:\n%s", want, stdout)
		}
	}
	for _, args := range [][]string{{"group", "help", "leaf"}, {"help", "group", "leaf"}, {"group", "leaf", "--help"}} {
		stdout, _, code, _ := runProg(t, args...)
		if code != 0 || !strings.HasPrefix(stdout, "Usage: prog group leaf [flags]\n") || !strings.Contains(stdout, "  --yes\n") {
			t.Errorf("%q: exit %d:\n%s", args, code, stdout)
		}
	}
}

func TestCheck(t *testing.T) {
	var ran []string
	p := testProgram(&ran)
	for _, ok := range [][]string{{"get", "x", "--size", "2"}, {"group", "leaf"}, {"help", "get"}} {
		if err := p.Check(ok); err != nil {
			t.Errorf("Check(%q): %v", ok, err)
		}
	}
	for _, bad := range [][]string{{"get"}, {"get", "--nope", "x"}, {"grop"}} {
		if err := p.Check(bad); err == nil {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
	if len(ran) != 0 {
		t.Errorf("Check ran %q", ran)
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"tail", "tenant", "search", "pipeline", "produce", "n", "f"}
	for word, want := range map[string]string{
		"tial": "tail", "tenat": "tenant", "serch": "search", "pipe": "pipeline", "prodcue": "produce",
		"x": "", "nothing": "", "tail": "", "ta": "tail", "seach": "search",
	} {
		if got := Suggest(word, cands); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", word, got, want)
		}
	}
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"tail", "tial", 2}, {"flaw", "lawn", 2}, {"héllo", "hello", 1}} {
		if got := Levenshtein(tt.a, tt.b); got != tt.d {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func completionScript(t *testing.T, shell string) string {
	t.Helper()
	stdout, stderr, code, _ := runProg(t, "completion", shell)
	if code != 0 || stdout == "" {
		t.Fatalf("completion %s: exit %d: %s", shell, code, stderr)
	}
	return stdout
}

// TestBashCompletion checks the bash script's syntax and runs its
// function on command lines, as bash does when Tab is pressed.
func TestBashCompletion(t *testing.T) {
	script := completionScript(t, "bash")
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Log("no bash here: the script's content is checked, not run")
		for _, want := range []string{"complete -o default -F _prog prog", "'group leaf') echo '--yes --help'"} {
			if !strings.Contains(script, want) {
				t.Errorf("bash script lacks %q", want)
			}
		}
		return
	}
	path := filepath.Join(t.TempDir(), "prog.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// Each line is the words before the cursor's; the last is the word
	// being completed.
	for line, want := range map[string]string{
		"prog ":                        "get group completion help",
		"prog g":                       "get group",
		"prog group ":                  "leaf help",
		"prog group leaf --":           "--yes --help",
		"prog get --":                  "--json --since --size --help",
		"prog get -":                   "-f --json --since --size --help",
		"prog get --size 3 x --s":      "--since --size",
		"prog get --since = 1h x --j":  "--json",
		"prog get --size ":             "",
		"prog completion ":             "bash zsh fish",
		"prog completion z":            "zsh",
		"prog --help group ":           "leaf help",
		"prog help group ":             "leaf help",
		"prog group leaf --yes --help": "--help",
	} {
		words := strings.Split(line, " ")
		cmd := fmt.Sprintf("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _prog; echo \"${COMPREPLY[*]}\"",
			path, strings.Join(mapStrings(words, shQuote), " "), len(words)-1)
		out, err := exec.Command(bash, "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", line, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("completing %q: %q, want %q", line, got, want)
		}
	}
}

// TestZshFishCompletion checks what the scripts hold, and their syntax
// where the shell is installed.
func TestZshFishCompletion(t *testing.T) {
	zsh := completionScript(t, "zsh")
	for _, want := range []string{"#compdef prog\n", "compdef _prog prog\n", "'group leaf') reply=(\n        '--yes:really'", "'get:get a thing'", "'get') echo '-f --since --size'"} {
		if !strings.Contains(zsh, want) {
			t.Errorf("zsh script lacks %q", want)
		}
	}
	fish := completionScript(t, "fish")
	for _, want := range []string{"complete -c prog -n '__prog_is \\'group leaf\\'' -l 'yes' -d 'really'\n",
		"complete -c prog -n '__prog_is \\'get\\'' -l 'size' -r -F -d 'how many N'\n",
		"complete -c prog -n '__prog_is \\'\\'' -a 'get' -d 'get a thing'\n",
		"complete -c prog -n '__prog_is \\'completion\\'' -a 'bash zsh fish'\n"} {
		if !strings.Contains(fish, want) {
			t.Errorf("fish script lacks %q:\n%s", want, fish)
		}
	}
	for shell, script := range map[string]string{"zsh": zsh, "fish": fish} {
		bin, err := exec.LookPath(shell)
		if err != nil {
			continue // not installed here: its content is checked above
		}
		path := filepath.Join(t.TempDir(), "prog."+shell)
		if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", shell, err, out)
		}
	}
	if !slices.Equal(Shells, []string{"bash", "zsh", "fish"}) {
		t.Errorf("Shells = %q", Shells)
	}
}

// TestUnavailable: a command this build leaves out fails whatever its
// arguments, and still has its help.
func TestUnavailable(t *testing.T) {
	root := &Command{Name: "prog", Subcommands: []*Command{{Name: "dev", Summary: "not here", Unavailable: "dev: not in this build",
		Description: "Not in this build.", Examples: []string{"make run"}}}}
	var stdout, stderr bytes.Buffer
	err := root.Run(t.Context(), []string{"dev", "--no-demo"}, &stdout, &stderr)
	if code := Report(&stderr, "prog", err); code != 1 || stderr.String() != "prog: dev: not in this build\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	stdout.Reset()
	if err := root.Run(t.Context(), []string{"dev", "--help"}, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "Usage: prog dev [flags]\n\nNot in this build.\n") {
		t.Errorf("dev --help: %v:\n%s", err, stdout.String())
	}
}

// TestDeprecatedAlias: a flag's deprecated name sets the flag, with a
// warning line on stderr; help, completion and suggestions do not show it;
// both names at once are a usage error.
func TestDeprecatedAlias(t *testing.T) {
	var got []string
	root := &Command{Name: "prog", Subcommands: []*Command{{
		Name: "tail",
		Flags: func(fs *flag.FlagSet) Action {
			dataset := fs.String("dataset", "", "the `NAME`")
			DeprecatedAlias(fs, "stream", "dataset")
			all := fs.Bool("all", false, "all of it")
			DeprecatedAlias(fs, "full", "all")
			return func(context.Context, []string, io.Writer, io.Writer) error {
				got = append(got, fmt.Sprintf("dataset=%s all=%t", *dataset, *all))
				return nil
			}
		},
	}}}
	root.Subcommands = append(root.Subcommands, CompletionCommand("prog", func() *Command { return root }))
	run := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		code := Report(&stderr, "prog", root.Run(t.Context(), args, &stdout, &stderr))
		return stdout.String(), stderr.String(), code
	}
	for _, tt := range []struct {
		args        []string
		ran, stderr string
		code        int
	}{
		{[]string{"tail", "--dataset", "audit"}, "dataset=audit all=false", "", 0},
		{[]string{"tail", "--stream", "audit", "--full"}, "dataset=audit all=true",
			"warning: --full is deprecated: use --all\nwarning: --stream is deprecated: use --dataset\n", 0},
		{[]string{"tail", "--stream=audit"}, "dataset=audit all=false", "warning: --stream is deprecated: use --dataset\n", 0},
		{[]string{"tail", "--stream", "a", "--dataset", "b"}, "",
			"prog: tail: --stream is the deprecated name of --dataset: give --dataset only\nrun 'prog tail --help' for usage\n", 2},
		{[]string{"tail", "--strem", "a"}, "", "prog: tail: unknown flag --strem (an argument that starts with a dash goes after --)\nrun 'prog tail --help' for usage\n", 2},
	} {
		got = nil
		_, stderr, code := run(tt.args...)
		if code != tt.code || stderr != tt.stderr || strings.Join(got, "|") != tt.ran {
			t.Errorf("%q: exit %d, ran %q, stderr:\n%s\nwant exit %d, ran %q, stderr:\n%s", tt.args, code, got, stderr, tt.code, tt.ran, tt.stderr)
		}
	}
	if err := root.Check([]string{"tail", "--stream", "a", "--dataset", "b"}); err == nil {
		t.Error("Check took both names")
	}
	help, _, _ := run("tail", "--help")
	if strings.Contains(help, "stream") || strings.Contains(help, "full") || !strings.Contains(help, "--dataset NAME") {
		t.Errorf("help:\n%s", help)
	}
	for _, shell := range Shells {
		script, _, _ := run("completion", shell)
		if strings.Contains(script, "full") {
			t.Errorf("%s completion offers --full:\n%s", shell, script)
		}
		if shell == "bash" && !strings.Contains(script, "--stream") {
			t.Errorf("bash completion does not skip the value of --stream")
		}
	}
}
