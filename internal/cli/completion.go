package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Shells are the shells WriteCompletion writes scripts for.
var Shells = []string{"bash", "zsh", "fish"}

// completionEntry is what completion knows of one command: its path below
// the root ("" for the root, "pipeline apply"), subcommands, flags and
// argument words.
type completionEntry struct {
	path        string
	subcommands []*Command
	flags       []*flag.Flag
	valueFlags  []string // dashed names of the flags that take a value
	argWords    []string
}

func (root *Command) completionEntries() []completionEntry {
	var out []completionEntry
	root.Walk(func(c *Command, path string) {
		e := completionEntry{path: strings.TrimPrefix(strings.TrimPrefix(path, root.Name), " "),
			subcommands: c.Subcommands, argWords: c.ArgWords}
		if len(c.Subcommands) == 0 {
			c.flagSet(path).VisitAll(func(f *flag.Flag) {
				// A deprecated name is not offered, but its value is
				// skipped like any other flag's.
				if !hidden(f) {
					e.flags = append(e.flags, f)
				}
				if !isBool(f) {
					e.valueFlags = append(e.valueFlags, Dashed(f.Name))
				}
			})
		}
		out = append(out, e)
	})
	return out
}

func (e completionEntry) commandNames() []string {
	var out []string
	for _, s := range e.subcommands {
		out = append(out, s.Name)
	}
	if len(out) > 0 {
		out = append(out, "help")
	}
	return out
}

func (e completionEntry) flagNames() []string {
	var out []string
	for _, f := range e.flags {
		out = append(out, Dashed(f.Name))
	}
	return append(out, "--help")
}

// funcName makes a shell function name of the program's name.
func funcName(prog string) string {
	return "_" + regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(prog, "_")
}

// WriteCompletion writes the completion script of shell (bash, zsh or
// fish) for root's commands, subcommands, flags and argument words.
func (root *Command) WriteCompletion(w io.Writer, shell string) error {
	switch shell {
	case "bash":
		return root.writeBash(w)
	case "zsh":
		return root.writeZsh(w)
	case "fish":
		return root.writeFish(w)
	}
	msg := fmt.Sprintf("unknown shell %q: want one of %s", shell, strings.Join(Shells, ", "))
	if s := Suggest(shell, Shells); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return &UsageError{Err: fmt.Errorf("%s", msg)}
}

// writeCase writes a shell function fn printing, for the command path given
// as its first argument, the words of list.
func writeCase(w io.Writer, fn string, entries []completionEntry, list func(completionEntry) []string) {
	fmt.Fprintf(w, "%s() {\n    case \"$1\" in\n", fn)
	for _, e := range entries {
		if words := list(e); len(words) > 0 {
			fmt.Fprintf(w, "    %s) echo %s ;;\n", shQuote(e.path), shQuote(strings.Join(words, " ")))
		}
	}
	fmt.Fprintf(w, "    esac\n}\n\n")
}

// shQuote quotes s for sh, bash and zsh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (root *Command) writeBash(w io.Writer) error {
	fn, prog := funcName(root.Name), root.Name
	entries := root.completionEntries()
	fmt.Fprintf(w, "# bash completion for %s, made by '%s completion bash'.\n", prog, prog)
	fmt.Fprintf(w, "# Load it in this shell with: source <(%s completion bash)\n", prog)
	fmt.Fprintf(w, "# or for every shell: %s completion bash > ~/.local/share/bash-completion/completions/%s\n\n", prog, prog)
	writeCase(w, fn+"_commands", entries, completionEntry.commandNames)
	writeCase(w, fn+"_flags", entries, completionEntry.flagNames)
	writeCase(w, fn+"_value_flags", entries, func(e completionEntry) []string { return e.valueFlags })
	writeCase(w, fn+"_args", entries, func(e completionEntry) []string { return e.argWords })
	// The command path is the words that name commands, flags and their
	// values skipped. Bash splits --flag=value into three words.
	fmt.Fprintf(w, `%[1]s() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local cmdpath="" word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case "$word" in
        --) break ;;
        -*=*) continue ;;
        -*)
            if [[ "${COMP_WORDS[i+1]}" == "=" ]]; then
                ((i += 2))
            elif [[ " $(%[1]s_value_flags "$cmdpath") " == *" $word "* ]]; then
                ((i++))
            fi
            continue ;;
        esac
        if [[ " $(%[1]s_commands "$cmdpath") " == *" $word "* && "$word" != help ]]; then
            cmdpath="${cmdpath:+$cmdpath }$word"
        fi
    done
    COMPREPLY=()
    if [[ "$prev" == "=" ]]; then
        prev="${COMP_WORDS[COMP_CWORD-2]}"
    fi
    if [[ "$prev" == -* && " $(%[1]s_value_flags "$cmdpath") " == *" $prev "* ]] || [[ "$cur" == "=" ]]; then
        return 0 # a flag's value: file names (complete -o default)
    fi
    local words
    if [[ "$cur" == -* ]]; then
        words="$(%[1]s_flags "$cmdpath")"
    elif [[ -n "$(%[1]s_commands "$cmdpath")" ]]; then
        words="$(%[1]s_commands "$cmdpath")"
    else
        words="$(%[1]s_args "$cmdpath")"
    fi
    if [[ -n "$words" ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
    return 0
}

complete -o default -F %[1]s %[2]s
`, fn, prog)
	return nil
}

func (root *Command) writeZsh(w io.Writer) error {
	fn, prog := funcName(root.Name), root.Name
	entries := root.completionEntries()
	fmt.Fprintf(w, "#compdef %s\n# zsh completion for %s, made by '%s completion zsh'.\n", prog, prog, prog)
	fmt.Fprintf(w, "# Load it in this shell with: source <(%s completion zsh)\n", prog)
	fmt.Fprintf(w, "# or for every shell: %s completion zsh > \"${fpath[1]}/_%s\"\n\n", prog, prog)
	writeCase(w, fn+"_command_names", entries, completionEntry.commandNames)
	writeCase(w, fn+"_value_flags", entries, func(e completionEntry) []string { return e.valueFlags })
	writeCase(w, fn+"_args", entries, func(e completionEntry) []string { return e.argWords })
	// _describe takes name:description items.
	described := func(name string, list func(completionEntry) [][2]string) {
		fmt.Fprintf(w, "%s_%s() {\n    case \"$1\" in\n", fn, name)
		for _, e := range entries {
			items := list(e)
			if len(items) == 0 {
				continue
			}
			fmt.Fprintf(w, "    %s) reply=(", shQuote(e.path))
			for _, it := range items {
				fmt.Fprintf(w, "\n        %s", shQuote(it[0]+":"+oneLine(it[1])))
			}
			fmt.Fprintf(w, ") ;;\n")
		}
		fmt.Fprintf(w, "    *) reply=() ;;\n    esac\n}\n\n")
	}
	described("commands", func(e completionEntry) [][2]string {
		var out [][2]string
		for _, s := range e.subcommands {
			out = append(out, [2]string{s.Name, s.Summary})
		}
		if len(out) > 0 {
			out = append(out, [2]string{"help", "show the help of a command"})
		}
		return out
	})
	described("flags", func(e completionEntry) [][2]string {
		var out [][2]string
		for _, f := range e.flags {
			_, usage := flag.UnquoteUsage(f)
			out = append(out, [2]string{Dashed(f.Name), usage})
		}
		return append(out, [2]string{"--help", "show the help"})
	})
	// zsh's $path is tied to $PATH: the command path is cmdpath.
	fmt.Fprintf(w, `%[1]s() {
    local cmdpath="" word i
    local -a reply
    for ((i = 2; i < CURRENT; i++)); do
        word="${words[i]}"
        case "$word" in
        --) break ;;
        -*=*) continue ;;
        -*)
            if [[ " $(%[1]s_value_flags "$cmdpath") " == *" $word "* ]]; then
                ((i++))
            fi
            continue ;;
        esac
        if [[ " $(%[1]s_command_names "$cmdpath") " == *" $word "* && "$word" != help ]]; then
            cmdpath="${cmdpath:+$cmdpath }$word"
        fi
    done
    local prev="${words[CURRENT-1]}"
    if [[ "$prev" == -* && " $(%[1]s_value_flags "$cmdpath") " == *" $prev "* ]]; then
        _files
        return
    fi
    if [[ "${words[CURRENT]}" == -* ]]; then
        %[1]s_flags "$cmdpath"
        _describe -t flags 'flag' reply
    elif [[ -n "$(%[1]s_command_names "$cmdpath")" ]]; then
        %[1]s_commands "$cmdpath"
        _describe -t commands 'command' reply
    elif [[ -n "$(%[1]s_args "$cmdpath")" ]]; then
        compadd -- ${=$(%[1]s_args "$cmdpath")}
    else
        _files
    fi
}

compdef %[1]s %[2]s
`, fn, prog)
	return nil
}

func (root *Command) writeFish(w io.Writer) error {
	fn, prog := "_"+funcName(root.Name), root.Name
	entries := root.completionEntries()
	fmt.Fprintf(w, "# fish completion for %s, made by '%s completion fish'.\n", prog, prog)
	fmt.Fprintf(w, "# Load it in this shell with: %s completion fish | source\n", prog)
	fmt.Fprintf(w, "# or for every shell: %s completion fish > ~/.config/fish/completions/%s.fish\n\n", prog, prog)
	fishCase := func(name string, list func(completionEntry) []string) {
		fmt.Fprintf(w, "function %s_%s\n    switch \"$argv[1]\"\n", fn, name)
		for _, e := range entries {
			if words := list(e); len(words) > 0 {
				fmt.Fprintf(w, "        case %s\n            printf '%%s\\n' %s\n", fishQuote(e.path), strings.Join(mapStrings(words, fishQuote), " "))
			}
		}
		fmt.Fprintf(w, "    end\nend\n\n")
	}
	fishCase("command_names", completionEntry.commandNames)
	fishCase("value_flags", func(e completionEntry) []string { return e.valueFlags })
	fmt.Fprintf(w, `# The command path: the words that name commands, flags and their values skipped.
function %[1]s_path
    set -l words (commandline -opc)
    set -e words[1]
    set -l cmdpath
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '--'
                break
            case '-*=*'
                continue
            case '-*'
                if contains -- $word (%[1]s_value_flags "$cmdpath")
                    set skip 1
                end
                continue
        end
        if test "$word" != help; and contains -- $word (%[1]s_command_names "$cmdpath")
            set cmdpath $cmdpath $word
        end
    end
    string join ' ' -- $cmdpath
end

function %[1]s_is
    set -l p (%[1]s_path)
    test "$p" = "$argv[1]"
end

complete -c %[2]s -f
`, fn, prog)
	for _, e := range entries {
		cond := fmt.Sprintf("%s_is %s", fn, fishQuote(e.path))
		for _, s := range e.subcommands {
			fmt.Fprintf(w, "complete -c %s -n %s -a %s -d %s\n", prog, fishQuote(cond), fishQuote(s.Name), fishQuote(oneLine(s.Summary)))
		}
		if len(e.subcommands) > 0 {
			fmt.Fprintf(w, "complete -c %s -n %s -a help -d 'show the help of a command'\n", prog, fishQuote(cond))
		}
		for _, f := range e.flags {
			_, usage := flag.UnquoteUsage(f)
			opt := "-l " + fishQuote(f.Name)
			if len(f.Name) == 1 {
				opt = "-s " + fishQuote(f.Name)
			}
			if !isBool(f) {
				opt += " -r -F"
			}
			fmt.Fprintf(w, "complete -c %s -n %s %s -d %s\n", prog, fishQuote(cond), opt, fishQuote(oneLine(usage)))
		}
		if len(e.subcommands) == 0 {
			fmt.Fprintf(w, "complete -c %s -n %s -l help -d 'show the help'\n", prog, fishQuote(cond))
			if len(e.argWords) > 0 {
				fmt.Fprintf(w, "complete -c %s -n %s -a %s\n", prog, fishQuote(cond), fishQuote(strings.Join(e.argWords, " ")))
			} else {
				fmt.Fprintf(w, "complete -c %s -n %s -F\n", prog, fishQuote(cond))
			}
		}
	}
	return nil
}

// fishQuote quotes s for fish: in single quotes only \ and ' are special.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// CompletionCommand is the "completion" command of the program prog, whose
// command table root returns: it prints the completion script of a shell.
func CompletionCommand(prog string, root func() *Command) *Command {
	return &Command{
		Name:    "completion",
		Summary: "print a shell completion script (bash, zsh or fish) for commands, subcommands and flags",
		Args:    "bash|zsh|fish",
		MinArgs: 1, MaxArgs: 1,
		Description: "Prints a script that completes this program's commands, subcommands, flags and their fixed\n" +
			"values in the shell named. Load it in the running shell, or install it where the shell\n" +
			"looks for completions (the script's first lines say where).",
		Examples: []string{
			"source <(" + prog + " completion bash)                 # bash, in this shell",
			prog + " completion zsh > \"${fpath[1]}/_" + prog + "\"      # zsh, for every shell",
			prog + " completion fish | source                      # fish, in this shell",
		},
		ArgWords: Shells,
		Flags: func(fs *flag.FlagSet) Action {
			return func(_ context.Context, args []string, stdout, _ io.Writer) error {
				return root().WriteCompletion(stdout, args[0])
			}
		},
	}
}
