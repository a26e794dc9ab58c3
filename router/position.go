package router

import (
	"errors"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/file"
)

// Where in a pipeline document a problem is: a problem with a step's
// pattern or expression is located at that value, and where the value
// says where in it (an expression's error, a regex's bad part, a grok
// reference), at that character.

// valuePos is where a step's value is in the document.
type valuePos struct {
	Line, Column int
	// Quoted: the value is written between quotes (its text starts a
	// column later); Block: it is a | or > block, whose text starts on
	// the next line, at Column.
	Quoted, Block bool
}

// valueErr is a problem with the value of a step key: key is the key
// ("pattern", "if", ...; "pattern[1]" for a list's second item), and the
// problem is at byte offset of the value, or at line and col (1-based
// line, 0-based column in characters) of it, when known.
type valueErr struct {
	key       string
	offset    int // -1: unknown
	line, col int // 0: unknown
	err       error
}

func (e *valueErr) Error() string { return e.err.Error() }
func (e *valueErr) Unwrap() error { return e.err }

// valueError locates err, a problem with value, the text of key.
func valueError(key, value string, err error) error {
	ve := &valueErr{key: key, offset: -1, err: err}
	var fe *file.Error
	var se *syntax.Error
	switch {
	case errors.As(err, &fe):
		ve.line, ve.col = fe.Line, fe.Column
	case errors.As(err, &se) && se.Expr != "":
		ve.offset = strings.Index(value, se.Expr)
	default:
		// A grok error names the reference at fault: %{NAME:field}.
		msg := err.Error()
		if i := strings.Index(msg, "%{"); i >= 0 {
			if j := strings.IndexByte(msg[i:], '}'); j >= 0 {
				ve.offset = strings.Index(value, msg[i:i+j+1])
			}
		}
	}
	return ve
}

// locate returns the document line and column of a step's problem: at the
// value it is about when known, else at the step.
func (ss *StepSpec) locate(err error) (line, col int) {
	line, col = max(ss.Line, 1), max(ss.Column, 1)
	var ve *valueErr
	if !errors.As(err, &ve) {
		return line, col
	}
	p, ok := ss.Pos[ve.key]
	if !ok {
		return line, col
	}
	line, col = p.Line, p.Column
	if p.Quoted {
		col++
	}
	switch {
	case ve.line > 0 && p.Block:
		return p.Line + ve.line, p.Column + ve.col
	case ve.line > 0:
		return line + ve.line - 1, col + ve.col
	case ve.offset >= 0 && !p.Block:
		return line, col + utf8.RuneCountInString(valueText(ss, ve.key)[:ve.offset])
	}
	return line, col
}

// valueText is the text of a step key's value, for locate.
func valueText(ss *StepSpec, key string) string {
	var v string
	switch key {
	case "pattern":
		v = ss.Pattern
	case "if":
		v = ss.If
	case "expr":
		v = ss.Expr
	case "key":
		v = ss.Key
	case "continuation":
		v = ss.Continuation
	default:
		if i := strings.IndexByte(key, '['); i > 0 && strings.HasPrefix(key, "pattern[") {
			n := 0
			for _, c := range key[i+1 : len(key)-1] {
				n = n*10 + int(c-'0')
			}
			if n < len(ss.GrokPatterns) {
				v = ss.GrokPatterns[n]
			}
		}
	}
	return v
}
