package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration, located by the dotted
// path of the key it concerns (crm.routes[2].method). Path is empty for
// problems with the file as a whole (a YAML syntax error).
type Problem struct {
	// Path is the dotted key path, with [i] for list items.
	Path string
	// Line is the 1-based line in the YAML file, or 0 when the problem was
	// found after decoding (by Validate) and no line is known.
	Line int
	// Msg says what is wrong; it never contains a secret's value.
	Msg string
	// Err is the underlying cause, if any (for example an fs error when a
	// *_file could not be read), so that errors.Is sees through *Error.
	Err error
}

// String renders the problem as "path: msg (line n)".
func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// Error lists every problem found in a configuration, so that an operator
// fixes the file in one round instead of one error per restart. Decoding
// problems come first in document order, then secret-file problems, then
// Validate's in schema order.
type Error struct {
	Problems []Problem
}

// maxRendered bounds how many problems Error renders; a hostile or badly
// broken file can produce thousands, and all of them stay in Problems.
const maxRendered = 50

// Error renders one problem per line (at most maxRendered of them).
func (e *Error) Error() string {
	switch len(e.Problems) {
	case 0:
		return "invalid config"
	case 1:
		return e.Problems[0].String()
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(e.Problems)))
	b.WriteString(" config problems:")
	for i, p := range e.Problems {
		if i == maxRendered {
			fmt.Fprintf(&b, "\n\t... and %d more", len(e.Problems)-maxRendered)
			break
		}
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap exposes the problems' causes to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, p := range e.Problems {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return errs
}

// problems collects Problems; its zero value is ready to use.
type problems struct {
	list []Problem
}

func (ps *problems) add(path string, line int, format string, args ...any) {
	ps.list = append(ps.list, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (ps *problems) addErr(path string, line int, cause error, format string, args ...any) {
	ps.list = append(ps.list, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...), Err: cause})
}

// err returns nil when nothing was collected, so callers can return it as is.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &Error{Problems: ps.list}
}

// field joins a parent path and a struct key.
func field(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// index joins a parent path and a list index.
func index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// mapKey joins a parent path and a user-chosen map key. Keys that are not
// plain words are quoted so the path stays unambiguous (a role named
// "a.b" must not read as two levels).
func mapKey(parent, key string) string {
	if isWord(key) {
		return field(parent, key)
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

// isWord reports whether s is a non-empty run of ASCII letters, digits, '_'
// and '-' not starting with a digit or '-'.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case (c >= '0' && c <= '9') || c == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
