package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluicelogs/sluice/internal/cli"
)

// sluice runs a command line as the binary does (its output and exit
// status included) and returns stdout, stderr and the exit status.
func sluice(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	code := cli.Report(&stderr, "sluice", err)
	return stdout.String(), stderr.String(), code
}

// shellWords splits a shell command line into words and returns the
// arguments of its sluice command (a command whose first word, after
// VAR=value assignments, names the binary: sluice or bin/sluice), up to
// the end of that command; ok is false when the line runs no sluice
// command. Quotes are honoured; |, <, >, ;, &, ( and ) end a word and a
// command; # starts a comment.
func shellWords(line string) (args []string, ok bool) {
	words := shellSplit(line)
	isOp := func(w string) bool { return len(w) == 1 && strings.Contains("|<>;&()", w) }
	first := true // at a command's first word
	for i, word := range words {
		switch {
		case isOp(word):
			first = true
			continue
		case first && strings.Contains(word, "=") && !strings.HasPrefix(word, "="):
			continue // VAR=value before the command
		case !first:
			continue
		}
		first = false
		if word == "sluice" || strings.HasSuffix(word, "/sluice") {
			for _, a := range words[i+1:] {
				if isOp(a) {
					break
				}
				args = append(args, a)
			}
			return args, true
		}
	}
	return nil, false
}

// shellSplit splits a shell command line into words: quotes are honoured;
// each of |, <, >, ;, &, ( and ) is a word of its own; # starts a comment.
func shellSplit(line string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, w.String())
		}
		w.Reset()
		inWord = false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			w.WriteString(line[i+1 : i+1+j])
			inWord, i = true, i+1+j
		case c == '"':
			inWord = true
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				w.WriteByte(line[i])
			}
		case c == '#' && !inWord:
			flush()
			i = len(line)
		case strings.IndexByte("|<>;&()", c) >= 0:
			flush()
			words = append(words, string(c))
		case c == ' ' || c == '\t':
			flush()
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words
}

// TestEveryCommandHelp: every command and subcommand answers --help, -h
// and help <command> on stdout with its usage and an Examples section,
// and each example is a command line sluice accepts.
func TestEveryCommandHelp(t *testing.T) {
	prog := program()
	n := 0
	prog.Walk(func(c *cli.Command, path string) {
		n++
		words := strings.Fields(path)[1:]
		var outs []string
		for _, args := range [][]string{append(words, "--help"), append(words, "-h"), append([]string{"help"}, words...)} {
			stdout, stderr, code := sluice(t, t.Context(), args...)
			if code != 0 || stderr != "" {
				t.Errorf("sluice %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
			}
			outs = append(outs, stdout)
		}
		out := outs[0]
		if outs[1] != out || outs[2] != out {
			t.Errorf("%s: --help, -h and help differ", path)
		}
		if !strings.HasPrefix(out, "Usage: "+path) || !strings.Contains(out, "\nExamples:\n  ") || strings.Contains(out, "Usage of") {
			t.Errorf("%s --help:\n%s", path, out)
		}
		if len(c.Examples) == 0 {
			t.Errorf("%s has no examples", path)
		}
		for _, e := range c.Examples {
			args, ok := shellWords(e)
			if !ok {
				t.Errorf("%s: example %q runs no sluice command", path, e)
				continue
			}
			if err := prog.Check(args); err != nil {
				t.Errorf("%s: example %q: %v", path, e, err)
			}
		}
	})
	if n < 20 {
		t.Errorf("walked %d commands", n)
	}
}

// TestUsageErrors: a mistake in a command line is one line on stderr,
// with a suggestion where one is close and a hint naming the help, and
// exit status 2; nothing runs and no help is dumped.
func TestUsageErrors(t *testing.T) {
	t.Setenv("SLUICE_KAFKA_BROKERS", closedAddr(t)) // nothing may connect
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tial", "--tenant", "shop"}, "sluice: unknown command \"tial\" (did you mean tail?)\nrun 'sluice --help' for usage\n"},
		{[]string{"serch"}, "sluice: unknown command \"serch\" (did you mean search?)\nrun 'sluice --help' for usage\n"},
		{nil, "sluice: missing command: one of dev, demo, shipper, pipeline, router, indexer, gateway, tenant, produce, tail, search, loadtest, probe, version, completion\nrun 'sluice --help' for usage\n"},
		{[]string{"tail", "--tenat", "shop"}, "sluice: tail: unknown flag --tenat (did you mean --tenant?)\nrun 'sluice tail --help' for usage\n"},
		{[]string{"tail"}, "sluice: tail: --tenant is required\nrun 'sluice tail --help' for usage\n"},
		{[]string{"tail", "shop"}, "sluice: tail: unexpected argument \"shop\": tail takes none (flags start with --)\nrun 'sluice tail --help' for usage\n"},
		{[]string{"tail", "--tenant", "Shop"}, "sluice: tail: --tenant: invalid tenant id \"Shop\": must be 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit\nrun 'sluice tail --help' for usage\n"},
		{[]string{"search", "--tenant", "shop", "--since", "1x"}, "sluice: search: invalid value \"1x\" for --since: want a duration such as 30m, 12h, 7d or 2w, or all (no time bound)\nrun 'sluice search --help' for usage\n"},
		{[]string{"search", "--tenant", "shop", "-level:debug"}, "sluice: search: unknown flag -level:debug (an argument that starts with a dash goes after --)\nrun 'sluice search --help' for usage\n"},
		{[]string{"tenant", "creat", "shop"}, "sluice: tenant: unknown command \"creat\" (did you mean create?)\nrun 'sluice tenant --help' for usage\n"},
		{[]string{"tenant", "create"}, "sluice: tenant create: missing NAME\nrun 'sluice tenant create --help' for usage\n"},
		{[]string{"tenant", "create", "--partition", "3", "shop"}, "sluice: tenant create: unknown flag --partition (did you mean --partitions?)\nrun 'sluice tenant create --help' for usage\n"},
		{[]string{"tenant", "delete", "shop"}, "sluice: tenant delete: add --yes to delete tenant shop's topics, user, ACLs and quotas\nrun 'sluice tenant delete --help' for usage\n"},
		{[]string{"pipeline", "aply"}, "sluice: pipeline: unknown command \"aply\" (did you mean apply?)\nrun 'sluice pipeline --help' for usage\n"},
		{[]string{"pipeline", "apply"}, "sluice: pipeline apply: missing the pipeline file: give it as the argument, or -f FILE (- for stdin)\nrun 'sluice pipeline apply --help' for usage\n"},
		{[]string{"pipeline", "apply", "a.yaml", "b.yaml"}, "sluice: pipeline apply: unexpected argument \"b.yaml\" after FILE\nrun 'sluice pipeline apply --help' for usage\n"},
		{[]string{"pipeline", "apply", "-f", "a.yaml", "b.yaml"}, "sluice: pipeline apply: give the pipeline file once: -f a.yaml or b.yaml\nrun 'sluice pipeline apply --help' for usage\n"},
		{[]string{"pipeline", "get"}, "sluice: pipeline get: missing TENANT\nrun 'sluice pipeline get --help' for usage\n"},
		{[]string{"tail", "--tenant", "shop", "--timeout", "0s"}, "sluice: tail: --timeout must be positive, got 0s\nrun 'sluice tail --help' for usage\n"},
		{[]string{"completion", "tcsh"}, "sluice: completion: unknown shell \"tcsh\": want one of bash, zsh, fish (did you mean bash?)\nrun 'sluice completion --help' for usage\n"},
		{[]string{"help", "tali"}, "sluice: no help for unknown command \"tali\" (did you mean tail?)\nrun 'sluice --help' for usage\n"},
	} {
		stdout, stderr, code := sluice(t, t.Context(), tt.args...)
		if code != 2 || stderr != tt.want || stdout != "" {
			t.Errorf("sluice %s: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", strings.Join(tt.args, " "), code, stdout, stderr, tt.want)
		}
	}
}

// TestFlagsAfterArguments: flags may follow the arguments, and -- ends
// them.
func TestFlagsAfterArguments(t *testing.T) {
	path := writePipeline(t, goodPipeline)
	for _, args := range [][]string{
		{"pipeline", "validate", path},
		{"pipeline", "validate", "-f", path},
		{"pipeline", "validate", "--f=" + path},
	} {
		stdout, stderr, code := sluice(t, t.Context(), args...)
		if code != 0 || stdout != "valid: tenant acme version 3, 2 tests passed\n" {
			t.Errorf("%q: exit %d, %q %q", args, code, stdout, stderr)
		}
	}
}

// syncBuffer is a buffer written by one goroutine and read by another,
// which can wait for a line to be written.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer holds s, or ctx ends.
func (b *syncBuffer) waitFor(ctx context.Context, s string) bool {
	for !strings.Contains(b.String(), s) {
		select {
		case <-ctx.Done():
			return false
		case <-b.wrote:
		}
	}
	return true
}

// TestCompletion: the completion scripts cover every command, subcommand
// and flag of the table; bash's is syntax-checked and run on command
// lines as Tab runs it.
func TestCompletion(t *testing.T) {
	scripts := map[string]string{}
	for _, shell := range cli.Shells {
		stdout, stderr, code := sluice(t, t.Context(), "completion", shell)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "completion "+shell) {
			t.Fatalf("completion %s: exit %d, %s", shell, code, stderr)
		}
		scripts[shell] = stdout
	}
	for shell, want := range map[string][]string{
		"bash": {"'pipeline') echo 'validate test apply get list delete help'", "'tenant delete') echo '--timeout --yes --help'", "complete -o default -F _sluice sluice"},
		"zsh":  {"#compdef sluice", "'tail') reply=(", "'--from-beginning:start at the oldest record kept rather than at new ones'"},
		"fish": {"complete -c sluice -n '__sluice_is \\'pipeline\\'' -a 'apply'", "complete -c sluice -n '__sluice_is \\'search\\'' -l 'since' -r -F"},
	} {
		for _, w := range want {
			if !strings.Contains(scripts[shell], w) {
				t.Errorf("%s script lacks %q", shell, w)
			}
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Log("no bash here: the scripts' content is checked, not run")
		return
	}
	path := filepath.Join(t.TempDir(), "sluice.bash")
	if err := os.WriteFile(path, []byte(scripts["bash"]), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	for line, want := range map[string]string{
		"sluice t":                          "tenant tail",
		"sluice pipeline ap":                "apply",
		"sluice tenant delete --":           "--timeout --yes --help",
		"sluice search --tenant shop x --s": "--since --size",
		"sluice completion ":                "bash zsh fish",
		"sluice tail --tenant ":             "",
	} {
		words := strings.Split(line, " ")
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		cmd := fmt.Sprintf("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _sluice; echo \"${COMPREPLY[*]}\"", path, strings.Join(quoted, " "), len(words)-1)
		out, err := exec.Command(bash, "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", line, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("completing %q: %q, want %q", line, got, want)
		}
	}
}
