package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsetEnv is the cause (see Problem.Err) of a problem about a ${NAME}
// whose variable is not set and has no default.
var ErrUnsetEnv = errors.New("environment variable is not set")

// expand replaces ${NAME} and ${NAME:-default} in a scalar value.
//
// The rules are deliberately narrow, because configuration values include
// passwords and regular expressions full of '$':
//   - only the braced form is expanded; a lone '$' or $NAME stays literal;
//   - $${ is a literal ${ (so a value can contain the two characters);
//   - ${NAME:-default} uses default when NAME is unset or empty, as in sh;
//   - a variable's value is inserted verbatim and never expanded again, so
//     an environment value cannot smuggle in a reference to another one;
//   - an unset variable without a default is an error, never "".
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ at offset %d (write $${ for a literal ${)", i)
		}
		inner := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(inner, ":-")
		if !isEnvName(name) {
			return "", fmt.Errorf("invalid variable name %q in ${...}", name)
		}
		if hasDef && strings.Contains(def, "${") {
			return "", fmt.Errorf("${%s:-...}: nested ${ in a default is not supported", name)
		}
		val, ok := lookup(name)
		switch {
		case ok && (val != "" || !hasDef):
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("%w: %s", ErrUnsetEnv, name)
		}
		i += 2 + end + 1
	}
	return b.String(), nil
}

// isEnvName reports whether s is a POSIX-style variable name.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
