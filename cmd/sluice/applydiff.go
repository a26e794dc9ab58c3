package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"
)

// isTerminal reports whether r is a terminal a question can be asked on;
// tests replace it.
var isTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// pipelineDiff is the unified diff of the document to apply against the
// stored one (from and to name them); "" when they are the same.
func pipelineDiff(stored, doc []byte, from, to string) string {
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: diffLines(stored), B: diffLines(doc), FromFile: from, ToFile: to, Context: 3,
	})
	if err != nil {
		// Only writing to its buffer can fail, and it does not.
		return fmt.Sprintf("(no diff: %v)\n", err)
	}
	return d
}

// diffLines splits a document into lines, each ending in a newline (a
// last line without one gets one: the diff is for reading).
func diffLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] += "\n"
	}
	return lines
}

// pipelineStep is one step of a pipeline document, as far as telling
// which steps a new version removes needs.
type pipelineStep struct {
	Type string
	Line int
	body string // the step in canonical form, to match it in another version
}

// documentSteps returns the steps of a pipeline document, read leniently:
// a stored document that no longer parses still has steps to lose.
func documentSteps(src []byte) []pipelineStep {
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil
	}
	var steps *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "steps" {
			steps = root.Content[i+1]
		}
	}
	if steps == nil || steps.Kind != yaml.SequenceNode {
		return nil
	}
	var out []pipelineStep
	for _, n := range steps.Content {
		st := pipelineStep{Line: n.Line}
		if n.Kind == yaml.MappingNode && len(n.Content) > 0 {
			st.Type = n.Content[0].Value
		}
		var v any
		if n.Decode(&v) == nil {
			if b, err := json.Marshal(v); err == nil {
				st.body = string(b)
			}
		}
		out = append(out, st)
	}
	return out
}

// removedSteps returns the steps of old that new has fewer of, by step
// type: a step changed in place is not removed, one whose type is gone (or
// has fewer steps) is. Of a type's steps, those not found unchanged in new
// are named first.
func removedSteps(old, new []pipelineStep) []pipelineStep {
	count := map[string]int{}
	kept := map[string]int{} // bodies of new
	for _, s := range new {
		count[s.Type]--
		kept[s.body]++
	}
	for _, s := range old {
		count[s.Type]++
	}
	var out []pipelineStep
	for typ, n := range count {
		if n <= 0 {
			continue
		}
		var changed, same []pipelineStep
		for _, s := range old {
			if s.Type != typ {
				continue
			}
			if kept[s.body] > 0 {
				kept[s.body]--
				same = append(same, s)
			} else {
				changed = append(changed, s)
			}
		}
		out = append(out, slices.Concat(changed, same)[:n]...)
	}
	slices.SortFunc(out, func(a, b pipelineStep) int { return a.Line - b.Line })
	return out
}

// describeSteps names steps as "drop (line 9), route (line 11)".
func describeSteps(steps []pipelineStep) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		typ := s.Type
		if typ == "" {
			typ = "step"
		}
		parts[i] = fmt.Sprintf("%s (line %d)", typ, s.Line)
	}
	return strings.Join(parts, ", ")
}

// confirm asks question on w and reads the answer from r: only y or yes
// (any case) is yes.
func confirm(w io.Writer, r io.Reader, question string) bool {
	fmt.Fprintf(w, "%s [y/N] ", question)
	line, _ := bufio.NewReader(r).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
