package main

// The TOML subset the config file is written in: a small hand-written
// scanner and parser, so that every error can name file, line and column
// and the binary needs no TOML library. What the keys mean is config.go's.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// position is a place in the config text; columns count runes from 1.
type position struct{ line, col int }

func (p position) String() string { return fmt.Sprintf("%d:%d", p.line, p.col) }

func newConfigError(file string, at position, key, format string, args ...any) *configError {
	return &configError{File: file, Line: at.line, Col: at.col, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// valueKind is the type of a value: the subset has only these four.
type valueKind int

const (
	kindString valueKind = iota
	kindInteger
	kindBoolean
	kindArray
)

func (k valueKind) String() string {
	return [...]string{"a string", "an integer", "a boolean", "an array"}[k]
}

// tomlValue is one parsed value and where it starts.
type tomlValue struct {
	pos     position
	kind    valueKind
	str     string
	num     int64
	boolean bool
	items   []tomlValue // kindArray: always strings
}

const endOfText rune = -1

// configParser reads the TOML subset of the config format rune by rune,
// tracking the position of the next rune for messages, and stores each value
// in cfg as soon as it is read.
type configParser struct {
	file   string
	src    string
	off    int                 // byte offset of the next rune
	pos    position            // its line and column
	table  string              // the current table; "" before the first header
	tables map[string]position // each header seen
	where  map[string]position // each key seen, qualified; validation points at them
	cfg    *Config
}

func (p *configParser) errorf(at position, format string, args ...any) error {
	return newConfigError(p.file, at, "", format, args...)
}

// unsupported reports a value outside the subset, saying what it looks like
// but never echoing it: it could be an unquoted token.
func (p *configParser) unsupported(at position, found string) error {
	return p.errorf(at, "expected a string, integer, boolean or array, found %s", found)
}

func (p *configParser) peek() rune {
	if p.off >= len(p.src) {
		return endOfText
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.off:])
	return r
}

func (p *configParser) advance() {
	r, n := utf8.DecodeRuneInString(p.src[p.off:])
	p.off += n
	if r == '\n' {
		p.pos = position{p.pos.line + 1, 1}
	} else if n > 0 {
		p.pos.col++
	}
}

func (p *configParser) skip(chars string) {
	for p.peek() != endOfText && strings.ContainsRune(chars, p.peek()) {
		p.advance()
	}
}

func (p *configParser) skipComment() {
	for !isLineEnd(p.peek()) {
		p.advance()
	}
}

// describeRune names a rune for "found ..." messages.
func describeRune(r rune) string {
	switch r {
	case endOfText:
		return "the end of the file"
	case '\n', '\r':
		return "the end of the line"
	case '#':
		return "a comment"
	}
	return strconv.QuoteRune(r)
}

func isLineEnd(r rune) bool { return r == '\n' || r == '\r' || r == endOfText }

func isBareRune(r rune) bool {
	return r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// qualifiedKey names a key as errors show it: table.key, quoting a key that is not bare.
func qualifiedKey(table, key string) string {
	if strings.IndexFunc(key, func(r rune) bool { return !isBareRune(r) }) >= 0 {
		key = strconv.Quote(key)
	}
	return strings.TrimPrefix(table+"."+key, ".")
}

// checkText rejects what TOML forbids anywhere: invalid UTF-8 and raw control
// characters but tab and CRLF, so that parsing sees only clean runes.
func (p *configParser) checkText() error {
	for q := *p; q.off < len(q.src); q.advance() {
		r, n := utf8.DecodeRuneInString(q.src[q.off:])
		switch {
		case r == utf8.RuneError && n == 1:
			return q.errorf(q.pos, "invalid UTF-8; the file must be UTF-8 text")
		case r == '\r' && !strings.HasPrefix(q.src[q.off+1:], "\n"):
			return q.errorf(q.pos, "carriage return not followed by a line feed")
		case (r < 0x20 || r == 0x7f) && r != '\t' && r != '\n' && r != '\r':
			return q.errorf(q.pos, "control character %U; write it as an escape in a \"string\"", r)
		}
	}
	return nil
}

func (p *configParser) parse() error {
	if err := p.checkText(); err != nil {
		return err
	}
	for p.peek() != endOfText {
		p.skip(" \t")
		var err error
		if r := p.peek(); r == '[' {
			err = p.header()
		} else if r != '#' && !isLineEnd(r) {
			err = p.keyValue()
		}
		if err == nil {
			err = p.endLine()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// endLine accepts trailing blanks, a comment and the line break.
func (p *configParser) endLine() error {
	p.skip(" \t")
	if p.peek() == '#' {
		p.skipComment()
	}
	if !isLineEnd(p.peek()) {
		return p.errorf(p.pos, "expected the end of the line, found %s", describeRune(p.peek()))
	}
	p.skip("\r") // only ever the CR of a CRLF: checkText rejected lone ones
	p.advance()
	return nil
}

func (p *configParser) expect(r rune, after string) error {
	if p.peek() != r {
		return p.errorf(p.pos, "expected %q after %s, found %s", r, after, describeRune(p.peek()))
	}
	p.advance()
	return nil
}

func (p *configParser) header() error {
	start := p.pos
	p.advance()
	if p.peek() == '[' {
		return p.errorf(start, "arrays of tables ([[...]]) are not supported")
	}
	p.skip(" \t")
	name, err := p.key()
	if err == nil {
		err = p.expect(']', "the table name")
	}
	first, dup := p.tables[name]
	switch {
	case err != nil:
		return err
	case !slices.Contains(configTables, name):
		return p.errorf(start, "unknown table [%s]%s; the accepted tables are [%s]",
			name, suggestName(name, configTables, "[%s]"), strings.Join(configTables, "], ["))
	case dup:
		return p.errorf(start, "duplicate table [%s]; it was first defined at %s:%s", name, p.file, first)
	case name == "role_to_recipients":
		p.cfg.RoleToRecipients = map[string][]recipient{}
	}
	p.tables[name], p.table = start, name
	return nil
}

func (p *configParser) keyValue() error {
	start := p.pos
	key, err := p.key()
	if err == nil {
		err = p.expect('=', "the key")
	}
	if err != nil {
		return err
	}
	p.skip(" \t")
	v, err := p.value()
	if err != nil {
		return err
	}
	return p.set(start, key, v)
}

// key reads a bare or quoted key and the blanks after it.
func (p *configParser) key() (key string, err error) {
	start, from := p.pos, p.off
	switch r := p.peek(); {
	case p.multiline():
		return "", p.errorf(start, "expected a key, found a multi-line string")
	case r == '"' || r == '\'':
		if key, err = p.str(); err != nil {
			return "", err
		}
	case isBareRune(r):
		for isBareRune(p.peek()) {
			p.advance()
		}
		key = p.src[from:p.off]
	default:
		return "", p.errorf(start, "expected a key, found %s", describeRune(r))
	}
	if key == "" {
		return "", p.errorf(start, "empty keys are not allowed")
	}
	p.skip(" \t")
	if p.peek() == '.' {
		return "", p.errorf(p.pos, "dotted keys are not supported; use a [table] header and plain keys")
	}
	return key, nil
}

func (p *configParser) multiline() bool {
	return strings.HasPrefix(p.src[p.off:], `"""`) || strings.HasPrefix(p.src[p.off:], `'''`)
}

func (p *configParser) value() (tomlValue, error) {
	start := p.pos
	switch r := p.peek(); {
	case p.multiline():
		return tomlValue{}, p.unsupported(start, "a multi-line string")
	case r == '"' || r == '\'':
		s, err := p.str()
		return tomlValue{pos: start, kind: kindString, str: s}, err
	case r == '[':
		return p.array()
	case r == '{':
		return tomlValue{}, p.unsupported(start, "an inline table")
	}
	return p.scalar()
}

// str reads a basic ("...", with escapes) or literal ('...') one-line string.
func (p *configParser) str() (string, error) {
	start, quote := p.pos, p.peek()
	p.advance()
	var b strings.Builder
	for r := p.peek(); r != quote; r = p.peek() {
		switch {
		case isLineEnd(r):
			return "", p.errorf(start, "unterminated string: close it with %c on the same line", quote)
		case r == '\\' && quote == '"':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		default:
			b.WriteRune(r)
			p.advance()
		}
	}
	p.advance()
	return b.String(), nil
}

// escape reads one escape sequence of a basic string: TOML's are a subset of
// Go's, so strconv decodes those that pass the first check.
func (p *configParser) escape(b *strings.Builder) error {
	rest := p.src[p.off:]
	r, _, tail, err := strconv.UnquoteChar(rest, '"')
	if len(rest) < 2 || !strings.ContainsRune(`btnfr"\uU`, rune(rest[1])) || err != nil {
		return p.errorf(p.pos, `invalid escape sequence; use \" \\ \n \t \r \b \f \uXXXX or \UXXXXXXXX (a Unicode scalar value in hex)`)
	}
	for p.off < len(p.src)-len(tail) { // the sequence is ASCII: one column a byte
		p.advance()
	}
	b.WriteRune(r)
	return nil
}

// array reads an array of strings; blanks, line breaks and comments may sit
// between items, and a trailing comma is allowed.
func (p *configParser) array() (tomlValue, error) {
	arr := tomlValue{pos: p.pos, kind: kindArray}
	p.advance()
	for {
		p.skipArrayBlank()
		switch p.peek() {
		case ']':
			p.advance()
			return arr, nil
		case '[':
			return tomlValue{}, p.errorf(p.pos, "nested arrays are not supported; an array holds strings")
		case endOfText:
			return tomlValue{}, p.errorf(arr.pos, "unterminated array: no closing ]")
		}
		item, err := p.value()
		if err != nil {
			return tomlValue{}, err
		}
		if item.kind != kindString {
			return tomlValue{}, p.errorf(item.pos, "arrays may only hold strings, found %s", item.kind)
		}
		arr.items = append(arr.items, item)
		p.skipArrayBlank()
		r := p.peek()
		if r != ']' && r != ',' {
			return tomlValue{}, p.errorf(p.pos, "expected ',' or ']' in the array, found %s", describeRune(r))
		}
		if p.advance(); r == ']' {
			return arr, nil
		}
	}
}

func (p *configParser) skipArrayBlank() {
	for p.skip(" \t\r\n"); p.peek() == '#'; p.skip(" \t\r\n") {
		p.skipComment()
	}
}

// scalar reads an unquoted value: a boolean or a decimal integer (optional
// sign, underscores only between digits, no leading zero). Other words are
// named by what they look like.
func (p *configParser) scalar() (tomlValue, error) {
	start, from := p.pos, p.off
	for r := p.peek(); isBareRune(r) || r == '+' || r == '.' || r == ':'; r = p.peek() {
		p.advance()
	}
	word := p.src[from:p.off]
	digits := strings.TrimPrefix(strings.TrimPrefix(word, "+"), "-")
	lower := strings.ToLower(strings.TrimLeft(word, "+-"))
	isInt := len(word)-len(digits) <= 1 && digits != "" && strings.Trim(digits, "0123456789_") == ""
	n, rangeErr := strconv.ParseInt(strings.ReplaceAll(word, "_", ""), 10, 64)
	switch {
	case word == "":
		return tomlValue{}, p.unsupported(start, describeRune(p.peek()))
	case word == "true" || word == "false":
		return tomlValue{pos: start, kind: kindBoolean, boolean: word == "true"}, nil
	case isInt && (digits[0] == '_' || strings.HasSuffix(digits, "_") || strings.Contains(digits, "__")):
		return tomlValue{}, p.errorf(start, "invalid integer: underscores must sit between digits")
	case isInt && len(digits) > 1 && digits[0] == '0':
		return tomlValue{}, p.errorf(start, "invalid integer: leading zeros are not allowed")
	case isInt && rangeErr != nil:
		return tomlValue{}, p.errorf(start, "invalid integer: out of range")
	case isInt:
		return tomlValue{pos: start, kind: kindInteger, num: n}, nil
	case lower == "inf" || lower == "nan":
		return tomlValue{}, p.unsupported(start, "a float")
	case len(lower) > 1 && lower[0] == '0' && strings.ContainsRune("xob", rune(lower[1])):
		return tomlValue{}, p.unsupported(start, "a hexadecimal, octal or binary integer (only decimal integers are supported)")
	case lower == "" || lower[0] < '0' || lower[0] > '9':
	case strings.ContainsAny(lower, "-:"):
		return tomlValue{}, p.unsupported(start, "a date or time")
	case strings.ContainsAny(lower, ".e"):
		return tomlValue{}, p.unsupported(start, "a float")
	}
	return tomlValue{}, p.unsupported(start, "an unquoted word (strings must be in quotes)")
}
