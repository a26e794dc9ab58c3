//go:build !nodev

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// The README and the guides show shell commands in ```sh blocks. Each is
// checked here: TestDocsCommands checks every one by what it runs (a sluice
// command line against the command table, a make target against the
// Makefile, a chart, manifest, secret or benchmark against the files that
// must hold it), and TestDocsRun runs the blocks marked <!-- run: dev -->
// (the line before the fence), line by line, with bash, against a real
// `sluice dev`.

// docFiles are the markdown files whose shell blocks are checked.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	// The README first: TestDocsRun runs its tour before a guide's
	// commands change the demo's tenants.
	return append([]string{"../../README.md", "../../deploy/RUNBOOK.md"}, files...)
}

// docLine is one logical command line of a doc's shell block.
type docLine struct {
	where string // file:line
	text  string // continuation lines joined
	run   string // the block's run marker ("dev"), or ""
}

var runMarker = regexp.MustCompile(`^<!-- run: ([a-z]+) -->$`)

// docLines returns the command lines of the ```sh blocks of path.
func docLines(t *testing.T, path string) []docLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		lines        []docLine
		inShell      bool
		marker, prev string
		pending      strings.Builder
		pendingAt    string
		name         = strings.TrimPrefix(path, "../../")
		sc           = bufio.NewScanner(f)
	)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		switch {
		case !inShell && strings.HasPrefix(text, "```sh"):
			inShell, marker = true, ""
			if m := runMarker.FindStringSubmatch(prev); m != nil {
				marker = m[1]
			}
		case inShell && strings.HasPrefix(text, "```"):
			inShell = false
		case inShell:
			if pending.Len() == 0 {
				pendingAt = fmt.Sprintf("%s:%d", name, n)
			}
			if body, ok := strings.CutSuffix(text, `\`); ok {
				pending.WriteString(body)
				break
			}
			pending.WriteString(text)
			if s := strings.TrimSpace(pending.String()); s != "" && !strings.HasPrefix(s, "#") {
				lines = append(lines, docLine{where: pendingAt, text: s, run: marker})
			}
			pending.Reset()
		}
		prev = text
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// simpleCommands splits a line's words (shellSplit) into simple commands at
// |, ;, &&, ( and ), dropping redirections and their files and leading
// variable assignments.
func simpleCommands(words []string) [][]string {
	var cmds [][]string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			cmds = append(cmds, cur)
		}
		cur = nil
	}
	assignment := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "|" || w == ";" || w == "&" || w == "(" || w == ")":
			flush()
		case w == "<" || w == ">":
			if i+1 < len(words) && words[i+1] != "(" {
				i++ // the file
			}
		case len(cur) == 0 && assignment.MatchString(w):
			// VAR=value before a command, or $(...) inside it.
		default:
			cur = append(cur, w)
		}
	}
	flush()
	return cmds
}

// shellUtilities are the commands the docs use for plumbing; bash -n checks
// their lines.
var shellUtilities = []string{"echo", "printf", "head", "base64", "grep", "export", "source", "hostname", "cat"}

// curlValueOptions are the curl options the docs use that take a value.
var curlValueOptions = []string{"-u", "--user", "-H", "--header", "-d", "--data", "--data-binary", "-X", "--request", "-o", "--output", "--oauth2-bearer"}

// TestDocsCommands checks every command of every shell block of the README
// and the guides.
func TestDocsCommands(t *testing.T) {
	prog := program()
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	values, err := os.ReadFile("../../deploy/helm/sluice/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	exists := func(path string) error {
		_, err := os.Stat(filepath.Join("../..", path))
		return err
	}
	check := func(cmd []string) error {
		switch name, args := cmd[0], cmd[1:]; {
		case name == "sluice" || strings.HasSuffix(name, "bin/sluice"):
			return prog.Check(args)
		case name == "make":
			for _, a := range args {
				if !strings.Contains(a, "=") && !targets[a] {
					return fmt.Errorf("the Makefile has no target %q", a)
				}
			}
		case name == "go":
			return checkGoCommand(args)
		case name == "helm":
			if len(args) < 3 || args[0] != "install" {
				return fmt.Errorf("helm: only helm install NAME CHART is checked")
			}
			return exists(filepath.Join(args[2], "Chart.yaml"))
		case name == "kubectl":
			return checkKubectl(args, exists, string(values))
		case name == "docker":
			if len(args) == 0 || args[0] != "compose" {
				return fmt.Errorf("docker: only docker compose is documented")
			}
			return exists("docker-compose.yml")
		case name == "curl":
			for i := 0; i < len(args); i++ {
				a := args[i]
				if slices.Contains(curlValueOptions, a) {
					i++ // the option's value, no URL
					continue
				}
				if !strings.HasPrefix(a, "-") {
					if _, err := url.Parse("http://" + strings.TrimPrefix(a, "http://")); err != nil {
						return err
					}
				}
			}
		case slices.Contains(shellUtilities, name):
		default:
			return fmt.Errorf("%s: no check knows this command; add one to TestDocsCommands", name)
		}
		return nil
	}
	n := 0
	for _, path := range docFiles(t) {
		for _, l := range docLines(t, path) {
			n++
			if out, err := exec.Command("bash", "-n", "-c", l.text).CombinedOutput(); err != nil {
				t.Errorf("%s: %q is not valid bash: %v\n%s", l.where, l.text, err, out)
				continue
			}
			for _, cmd := range simpleCommands(shellSplit(l.text)) {
				if err := check(cmd); err != nil {
					t.Errorf("%s: %q: %v", l.where, l.text, err)
				}
			}
		}
	}
	if n < 40 {
		t.Errorf("found %d command lines in the README and the guides; they hold more", n)
	}
}

// checkGoCommand checks go test [-run X] [-bench B] ./pkg/: the package
// exists and holds a benchmark matching B.
func checkGoCommand(args []string) error {
	if len(args) > 1 && args[0] == "run" {
		files, err := filepath.Glob(filepath.Join("../..", args[1], "main.go"))
		if err != nil || len(files) == 0 || !strings.HasPrefix(args[1], "./") {
			return fmt.Errorf("go run %s: no main.go in the repository there", args[1])
		}
		return nil
	}
	if len(args) == 0 || args[0] != "test" {
		return fmt.Errorf("go: only go test and go run ./... are documented")
	}
	var bench string
	var pkgs []string
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "-bench" && i+1 < len(args):
			bench, i = args[i+1], i+1
		case args[i] == "-run" || args[i] == "-benchtime" || args[i] == "-count":
			i++
		case strings.HasPrefix(args[i], "./"):
			pkgs = append(pkgs, strings.TrimSuffix(strings.TrimSuffix(args[i], "..."), "/"))
		}
	}
	for _, p := range pkgs {
		files, err := filepath.Glob(filepath.Join("../..", p, "*_test.go"))
		if err != nil || len(files) == 0 {
			return fmt.Errorf("no tests in %s", p)
		}
		if bench == "" {
			continue
		}
		re, err := regexp.Compile(bench)
		if err != nil {
			return err
		}
		found := false
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			for _, m := range regexp.MustCompile(`(?m)^func (Benchmark\w+)\(`).FindAllSubmatch(src, -1) {
				found = found || re.Match(m[1])
			}
		}
		if !found {
			return fmt.Errorf("no benchmark of %s matches %q", p, bench)
		}
	}
	return nil
}

// checkKubectl checks the kubectl commands the guides give: applied files
// exist, and a secret made for the chart is one its values name.
func checkKubectl(args []string, exists func(string) error, values string) error {
	var words []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-n" || a == "-o" || a == "--namespace":
			i++
		case a == "-f":
			if i+1 == len(args) {
				return errors.New("-f without a file")
			}
			if err := exists(args[i+1]); err != nil {
				return err
			}
			i++
		case strings.HasPrefix(a, "-"):
		default:
			words = append(words, a)
		}
	}
	switch {
	case len(words) >= 1 && words[0] == "apply":
	case len(words) >= 2 && words[0] == "create" && words[1] == "namespace":
	case len(words) >= 2 && words[0] == "get" && words[1] == "secret":
	case len(words) == 4 && words[0] == "create" && words[1] == "secret" && words[2] == "generic":
		if !strings.Contains(values, words[3]) {
			return fmt.Errorf("the chart's values name no secret %q", words[3])
		}
	default:
		return fmt.Errorf("kubectl %s: no check for it", strings.Join(words, " "))
	}
	return nil
}

// TestDocsRun runs the blocks marked <!-- run: dev --> line by line with
// bash in a directory where bin/sluice is the real binary, while that
// binary runs `sluice dev` (with its demo) on free ports. localhost:9200 in
// a line becomes the store's address, localhost:4318 the gateway's; the commands find Kafka and the store
// through SLUICE_KAFKA_BROKERS and SLUICE_ELASTICSEARCH_URLS. A line must
// exit 0; `tail`, which follows until stopped, must still be running after
// a few seconds. Every line must print something (tail --errors aside:
// web's dead letters come now and then).
func TestDocsRun(t *testing.T) {
	var lines []docLine
	for _, path := range docFiles(t) {
		for _, l := range docLines(t, path) {
			if l.run == "dev" {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) < 10 {
		t.Fatalf("%d lines marked to run; the tour alone has more", len(lines))
	}
	bin := apptest.DevBinary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(work, "bin", "sluice")); err != nil {
		t.Fatal(err)
	}
	kafkaAddr, esAddr, telemetryAddr, gatewayAddr := apptest.FreeAddr(t), apptest.FreeAddr(t), apptest.FreeAddr(t), apptest.FreeAddr(t)
	env := append(os.Environ(),
		"SLUICE_KAFKA_BROKERS="+kafkaAddr,
		"SLUICE_ELASTICSEARCH_URLS=http://"+esAddr,
		"PATH="+filepath.Join(work, "bin")+":"+os.Getenv("PATH"),
	)
	// Killed at the end of the test, its output logged if the test failed.
	apptest.Start(t, apptest.Config{Bin: bin, Args: []string{"dev"}, Dir: work, Env: []string{
		"SLUICE_DEV_DIR=" + filepath.Join(work, ".sluice"),
		"SLUICE_DEV_KAFKA_ADDR=" + kafkaAddr, "SLUICE_DEV_ES_ADDR=" + esAddr, "SLUICE_DEV_GATEWAY_ADDR=" + gatewayAddr,
		"SLUICE_TELEMETRY_ADDR=" + telemetryAddr, "SLUICE_LOG_LEVEL=warn"}})
	// The demo's three tenants have documents, routed audit lines and
	// dead letters included, before the tour starts.
	testwait.For(t, 3*time.Minute, "the demo's documents indexed", func() (bool, string) {
		var missing []string
		for _, target := range []string{"sluice-shop-*", "sluice-payments.audit-*", "sluice-web-*"} {
			res, err := http.Get("http://" + esAddr + "/" + target + "/_count?allow_no_indices=true")
			if err != nil {
				return false, err.Error()
			}
			var body bytes.Buffer
			_, _ = body.ReadFrom(res.Body)
			res.Body.Close()
			if !strings.Contains(body.String(), `"count":`) || strings.Contains(body.String(), `"count":0`) {
				missing = append(missing, target)
			}
		}
		return len(missing) == 0, fmt.Sprintf("no documents yet in %v", missing)
	})

	for _, l := range lines {
		text := strings.NewReplacer("localhost:9200", esAddr, "localhost:4318", gatewayAddr).Replace(l.text)
		follows := strings.Contains(text, "sluice tail")
		lctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		if strings.Contains(text, "go run ") {
			lctx, cancel = context.WithTimeout(t.Context(), 5*time.Minute) // the first build of the program
		}
		if follows {
			lctx, cancel = context.WithTimeout(t.Context(), 8*time.Second)
		}
		cmd := exec.CommandContext(lctx, "bash", "-c", text)
		cmd.Dir, cmd.Env = work, env
		if strings.Contains(text, "go run ./") {
			cmd.Dir = "../.." // a program of the repository, run from its root
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 5 * time.Second
		err := cmd.Run()
		cancel()
		switch {
		case follows && lctx.Err() == nil:
			t.Errorf("%s: %q exited (%v) instead of following\nstdout:\n%s\nstderr:\n%s", l.where, l.text, err, stdout.String(), stderr.String())
		case !follows && err != nil:
			t.Errorf("%s: %q: %v\nstdout:\n%s\nstderr:\n%s", l.where, l.text, err, stdout.String(), stderr.String())
		case stdout.Len()+stderr.Len() == 0 && !strings.Contains(text, "--errors"):
			// web's dead letters come now and then; the other lines
			// show what the demo has written by now, or what they did.
			t.Errorf("%s: %q printed nothing", l.where, l.text)
		default:
			t.Logf("%s: %s\n%s%s", l.where, l.text, firstLines(stdout.String(), 3), firstLines(stderr.String(), 2))
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
