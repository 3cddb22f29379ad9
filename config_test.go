package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// baseConfig is the smallest valid config. Its layout is fixed: error tests
// rely on its line numbers (line 7 is the first one after it).
const baseConfig = `[teleport]
addr = "teleport.example.com:443"
identity = "/var/lib/teleport/plugins/mattermost/identity"
[mattermost]
url = "https://mattermost.example.com"
token = "bot-token"
`

// variant returns baseConfig with each old string replaced by the new one
// that follows it; a replacement that does not apply fails the test.
func variant(t *testing.T, pairs ...string) string {
	t.Helper()
	text := baseConfig
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("baseConfig has no %q", pairs[i])
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return text
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := parseConfig("config.toml", []byte(text))
	if err != nil {
		t.Fatalf("parseConfig: %v\n%s", err, text)
	}
	return cfg
}

func TestParseConfigDefaults(t *testing.T) {
	cfg := mustParse(t, baseConfig)
	want := &Config{
		Teleport: teleportConfig{Addr: "teleport.example.com:443",
			Identity: "/var/lib/teleport/plugins/mattermost/identity", RefreshIdentity: true},
		Mattermost: mattermostConfig{URL: "https://mattermost.example.com", Token: "bot-token", Concurrency: 8},
		Log:        logConfig{Output: "stderr", Severity: slog.LevelInfo},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

// TestParseConfigAccepts covers every construct of the subset, mostly through
// log.output, which takes any string.
func TestParseConfigAccepts(t *testing.T) {
	output := func(want string) func(*testing.T, *Config) {
		return func(t *testing.T, c *Config) {
			if c.Log.Output != want {
				t.Errorf("log.output = %q, want %q", c.Log.Output, want)
			}
		}
	}
	recipients := func(want ...recipient) func(*testing.T, *Config) {
		return func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.Mattermost.Recipients, want) {
				t.Errorf("recipients = %#v, want %#v", c.Mattermost.Recipients, want)
			}
		}
	}
	concurrency := func(want int) func(*testing.T, *Config) {
		return func(t *testing.T, c *Config) {
			if c.Mattermost.Concurrency != want {
				t.Errorf("concurrency = %d, want %d", c.Mattermost.Concurrency, want)
			}
		}
	}
	severity := func(want slog.Level) func(*testing.T, *Config) {
		return func(t *testing.T, c *Config) {
			if c.Log.Severity != want {
				t.Errorf("severity = %v, want %v", c.Log.Severity, want)
			}
		}
	}
	tests := []struct {
		name  string
		text  string
		check func(*testing.T, *Config)
	}{
		{"escape quote", `output = "a\"b"`, output(`a"b`)},
		{"escape backslash", `output = "a\\b"`, output(`a\b`)},
		{"escape newline", `output = "a\nb"`, output("a\nb")},
		{"escape tab", `output = "a\tb"`, output("a\tb")},
		{"escape return", `output = "a\rb"`, output("a\rb")},
		{"escape backspace", `output = "a\bb"`, output("a\bb")},
		{"escape form feed", `output = "a\fb"`, output("a\fb")},
		{"escape u", `output = "caf\u00e9"`, output("café")},
		{"escape U", `output = "\U0001F600!"`, output("😀!")},
		{"raw unicode and tab", "output = \"é\t😀\"", output("é\t😀")},
		{"literal string keeps backslashes", `output = 'C:\logs\n.log'`, output(`C:\logs\n.log`)},
		{"literal string with double quote", `output = 'say "hi"'`, output(`say "hi"`)},
		{"empty string", `output = "stdout" # then nothing`, output("stdout")},
		{"hash inside a string", `output = "/var/log/#1.log" # comment`, output("/var/log/#1.log")},
		{"quoted key", `"output" = "x"`, output("x")},
		{"literal quoted key", `'output' = "x"`, output("x")},
		{"blanks and tabs", " \t output\t=\t\"x\"\t ", output("x")},
		{"no spaces", `output="x"#c`, output("x")},
		{"integer", "[mattermost]\nconcurrency = 16", concurrency(16)},
		{"integer with underscores", "[mattermost]\nconcurrency = 2_5_6", concurrency(256)},
		{"integer with plus sign", "[mattermost]\nconcurrency = +1", concurrency(1)},
		{"severity debug", `severity = "debug"`, severity(slog.LevelDebug)},
		{"severity Info", `severity = "Info"`, severity(slog.LevelInfo)},
		{"severity warn", `severity = "WARN"`, severity(slog.LevelWarn)},
		{"severity warning", `severity = "warning"`, severity(slog.LevelWarn)},
		{"severity error", `severity = "ERROR"`, severity(slog.LevelError)},
		{"boolean", "[teleport]\nrefresh_identity = false", func(t *testing.T, c *Config) {
			if c.Teleport.RefreshIdentity {
				t.Error("refresh_identity = true, want false")
			}
		}},
		{"empty array", "[mattermost]\nrecipients = []", recipients()},
		{"array on one line", "[mattermost]\nrecipients = [\"a/b\",\"c@d.e\"]",
			recipients(recipient{Team: "a", Channel: "b"}, recipient{Email: "c@d.e"})},
		{"array multi-line with comments and trailing comma", "[mattermost]\nrecipients = [ # first\n\n  \"a/b\", # a channel\n  # between\n  'c@d.e',\n] # done",
			recipients(recipient{Team: "a", Channel: "b"}, recipient{Email: "c@d.e"})},
		{"comma on its own line", "[mattermost]\nrecipients = [\n\"a/b\"\n,\n]", recipients(recipient{Team: "a", Channel: "b"})},
		{"channel display name, trimmed", "[mattermost]\nrecipients = [\" myteam / Town Square \"]",
			recipients(recipient{Team: "myteam", Channel: "Town Square"})},
		{"escaped recipient", "[mattermost]\nrecipients = [\"a\\u002fb\"]", recipients(recipient{Team: "a", Channel: "b"})},
		{"bare header with blanks", "[ log ]\noutput = \"x\"", output("x")},
		{"quoted header", "[\"log\"]\noutput = \"x\"", output("x")},
		{"literal quoted header", "['log']\noutput = \"x\"", output("x")},
		{"comment after header", "[log] # the log\noutput = \"x\"", output("x")},
		{"empty table", "[role_to_recipients]", func(t *testing.T, c *Config) {
			if c.RoleToRecipients == nil || len(c.RoleToRecipients) != 0 {
				t.Errorf("role_to_recipients = %#v, want an empty map", c.RoleToRecipients)
			}
		}},
		{"no final newline", "[log]\noutput = \"x\"", output("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			switch rest, _ := strings.CutPrefix(text, "[teleport]\n"); {
			case strings.HasPrefix(text, "[mattermost]\n"): // baseConfig ends in [mattermost]
				text = baseConfig + strings.TrimPrefix(text, "[mattermost]\n")
			case rest != text:
				text = strings.Replace(baseConfig, "[mattermost]", rest+"\n[mattermost]", 1)
			case strings.HasPrefix(text, "["):
				text = baseConfig + text
			default:
				text = baseConfig + "[log]\n" + text
			}
			tt.check(t, mustParse(t, text))
		})
	}
}

func TestParseConfigTestdata(t *testing.T) {
	tests := map[string]*Config{
		"keypair-roles.toml": {
			Teleport: teleportConfig{Addr: "auth.example.com:3025",
				ClientKey: "/var/lib/teleport/plugins/mattermost/auth.key",
				ClientCrt: "/var/lib/teleport/plugins/mattermost/auth.crt",
				RootCAs:   "/var/lib/teleport/plugins/mattermost/auth.cas"},
			Mattermost: mattermostConfig{URL: "http://mattermost.internal:8065/chat",
				TokenFile: "/etc/teleport-mattermost/token", CAFile: "/etc/teleport-mattermost/ca.pem", Concurrency: 16},
			RoleToRecipients: map[string][]recipient{
				"*":       {{Team: "myteam", Channel: "access-requests"}},
				"dbadmin": {{Team: "myteam", Channel: "dba"}, {Email: "DBA-Lead@Example.com"}},
				"editor":  {{Team: "docs", Channel: "Town Square"}},
			},
			Log: logConfig{Output: "/var/log/teleport-mattermost.log", Severity: slog.LevelDebug},
		},
		"strings.toml": {
			Teleport: teleportConfig{Addr: "teleport.example.com:443", Identity: `C:\plugins\identity`, RefreshIdentity: true},
			Mattermost: mattermostConfig{URL: "https://mattermost.example.com", Token: "token", Concurrency: 8,
				Recipients: []recipient{{Team: "myteam", Channel: "Town Square"}, {Email: "first.last@example.com"}}},
			Log: logConfig{Output: `C:\logs\plugin.log`, Severity: slog.LevelWarn},
		},
		"crlf-bom.toml": {
			Teleport:   teleportConfig{Addr: "teleport.example.com:443", Identity: "/id", RefreshIdentity: true},
			Mattermost: mattermostConfig{URL: "https://mattermost.example.com", Token: "tok", Concurrency: 8, Recipients: []recipient{{Team: "a", Channel: "b"}}},
			Log:        logConfig{Output: "stderr", Severity: slog.LevelInfo},
		},
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "config", name))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parseConfig(name, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("got  %+v\nwant %+v", cfg, want)
			}
		})
	}
}

// TestParseConfigErrors asserts each error's full text: position, key and message.
func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		// Values outside the subset.
		{"float", "[mattermost]\nconcurrency = 1.5", "config.toml:2:15: expected a string, integer, boolean or array, found a float"},
		{"exponent", "[mattermost]\nconcurrency = 1e3", "config.toml:2:15: expected a string, integer, boolean or array, found a float"},
		{"inf", "[mattermost]\nconcurrency = -inf", "config.toml:2:15: expected a string, integer, boolean or array, found a float"},
		{"nan", "[mattermost]\nconcurrency = nan", "config.toml:2:15: expected a string, integer, boolean or array, found a float"},
		{"date", "[log]\noutput = 1979-05-27", "config.toml:2:10: expected a string, integer, boolean or array, found a date or time"},
		{"date-time", "[log]\noutput = 1979-05-27T07:32:00Z", "config.toml:2:10: expected a string, integer, boolean or array, found a date or time"},
		{"time", "[log]\noutput = 07:32:00", "config.toml:2:10: expected a string, integer, boolean or array, found a date or time"},
		{"inline table", "[log]\noutput = { path = \"x\" }", "config.toml:2:10: expected a string, integer, boolean or array, found an inline table"},
		{"multi-line basic string", "[log]\noutput = \"\"\"x\"\"\"", "config.toml:2:10: expected a string, integer, boolean or array, found a multi-line string"},
		{"multi-line literal string", "[log]\noutput = '''x'''", "config.toml:2:10: expected a string, integer, boolean or array, found a multi-line string"},
		{"hexadecimal", "[mattermost]\nconcurrency = 0x10", "config.toml:2:15: expected a string, integer, boolean or array, found a hexadecimal, octal or binary integer (only decimal integers are supported)"},
		{"octal", "[mattermost]\nconcurrency = 0o7", "config.toml:2:15: expected a string, integer, boolean or array, found a hexadecimal, octal or binary integer (only decimal integers are supported)"},
		{"binary", "[mattermost]\nconcurrency = 0b1", "config.toml:2:15: expected a string, integer, boolean or array, found a hexadecimal, octal or binary integer (only decimal integers are supported)"},
		{"unquoted word", "[log]\noutput = stderr", "config.toml:2:10: expected a string, integer, boolean or array, found an unquoted word (strings must be in quotes)"},
		{"capitalised boolean", "[teleport]\nrefresh_identity = True", "config.toml:2:20: expected a string, integer, boolean or array, found an unquoted word (strings must be in quotes)"},
		{"missing value", "[log]\noutput =", "config.toml:2:9: expected a string, integer, boolean or array, found the end of the file"},
		{"missing value before comment", "[log]\noutput = # x\n", "config.toml:2:10: expected a string, integer, boolean or array, found a comment"},
		{"value is punctuation", "[log]\noutput = =", "config.toml:2:10: expected a string, integer, boolean or array, found '='"},
		// Integers.
		{"double underscore", "[mattermost]\nconcurrency = 1__6", "config.toml:2:15: invalid integer: underscores must sit between digits"},
		{"leading underscore", "[mattermost]\nconcurrency = _16", "config.toml:2:15: invalid integer: underscores must sit between digits"},
		{"trailing underscore", "[mattermost]\nconcurrency = 16_", "config.toml:2:15: invalid integer: underscores must sit between digits"},
		{"leading zero", "[mattermost]\nconcurrency = 08", "config.toml:2:15: invalid integer: leading zeros are not allowed"},
		{"overflow", "[mattermost]\nconcurrency = 9223372036854775808", "config.toml:2:15: invalid integer: out of range"},
		// Strings.
		{"unterminated string", "[log]\noutput = \"abc\n", "config.toml:2:10: unterminated string: close it with \" on the same line"},
		{"unterminated at end of file", "[log]\noutput = 'abc", "config.toml:2:10: unterminated string: close it with ' on the same line"},
		{"invalid escape", "[log]\noutput = \"a\\qb\"", `config.toml:2:12: invalid escape sequence; use \" \\ \n \t \r \b \f \uXXXX or \UXXXXXXXX (a Unicode scalar value in hex)`},
		{"Go-only escape", "[log]\noutput = \"\\x41\"", `config.toml:2:11: invalid escape sequence; use \" \\ \n \t \r \b \f \uXXXX or \UXXXXXXXX (a Unicode scalar value in hex)`},
		{"short unicode escape", "[log]\noutput = \"\\u12\"", `config.toml:2:11: invalid escape sequence; use \" \\ \n \t \r \b \f \uXXXX or \UXXXXXXXX (a Unicode scalar value in hex)`},
		{"surrogate escape", "[log]\noutput = \"\\uD800\"", `config.toml:2:11: invalid escape sequence; use \" \\ \n \t \r \b \f \uXXXX or \UXXXXXXXX (a Unicode scalar value in hex)`},
		{"escape beyond Unicode", "[log]\noutput = \"\\U00110000\"", `config.toml:2:11: invalid escape sequence; use \" \\ \n \t \r \b \f \uXXXX or \UXXXXXXXX (a Unicode scalar value in hex)`},
		{"backslash at end of line", "[log]\noutput = \"a\\\n", `config.toml:2:12: invalid escape sequence; use \" \\ \n \t \r \b \f \uXXXX or \UXXXXXXXX (a Unicode scalar value in hex)`},
		// Arrays.
		{"nested array", "[mattermost]\nrecipients = [[\"a/b\"]]", "config.toml:2:15: nested arrays are not supported; an array holds strings"},
		{"mixed array", "[mattermost]\nrecipients = [\"a/b\", 1]", "config.toml:2:22: arrays may only hold strings, found an integer"},
		{"array of booleans", "[mattermost]\nrecipients = [true]", "config.toml:2:15: arrays may only hold strings, found a boolean"},
		{"missing comma", "[mattermost]\nrecipients = [\"a/b\" \"c/d\"]", "config.toml:2:21: expected ',' or ']' in the array, found '\"'"},
		{"double comma", "[mattermost]\nrecipients = [\"a/b\",,]", "config.toml:2:21: expected a string, integer, boolean or array, found ','"},
		{"unterminated array", "[mattermost]\nrecipients = [\n\"a/b\",\n", "config.toml:2:14: unterminated array: no closing ]"},
		{"unterminated array after item", "[mattermost]\nrecipients = [\"a/b\"", "config.toml:2:20: expected ',' or ']' in the array, found the end of the file"},
		// Keys and tables.
		{"dotted key", "[mattermost]\nmattermost.url = \"x\"", "config.toml:2:11: dotted keys are not supported; use a [table] header and plain keys"},
		{"dotted table", "[mattermost.extra]", "config.toml:1:12: dotted keys are not supported; use a [table] header and plain keys"},
		{"array of tables", "[mattermost]\n[[recipient]]", "config.toml:2:1: arrays of tables ([[...]]) are not supported"},
		{"unterminated header", "[log\noutput = \"x\"", "config.toml:1:5: expected ']' after the table name, found the end of the line"},
		{"empty header", "[]", "config.toml:1:2: expected a key, found ']'"},
		{"text after header", "[log] output = \"x\"", "config.toml:1:7: expected the end of the line, found 'o'"},
		{"text after value", "[log]\noutput = \"x\" \"y\"", "config.toml:2:14: expected the end of the line, found '\"'"},
		{"missing equals", "[log]\noutput \"x\"", "config.toml:2:8: expected '=' after the key, found '\"'"},
		{"missing key", "[log]\n= \"x\"", "config.toml:2:1: expected a key, found '='"},
		{"empty key", "[role_to_recipients]\n\"\" = [\"a/b\"]", "config.toml:2:1: empty keys are not allowed"},
		{"multi-line key", "[log]\n\"\"\"output\"\"\" = \"x\"", "config.toml:2:1: expected a key, found a multi-line string"},
		{"unknown table", "[mattermst]", "config.toml:1:1: unknown table [mattermst] (did you mean [mattermost]?); the accepted tables are [teleport], [mattermost], [role_to_recipients], [log]"},
		{"unknown table far off", "[slack]", "config.toml:1:1: unknown table [slack]; the accepted tables are [teleport], [mattermost], [role_to_recipients], [log]"},
		{"unknown key", "[mattermost]\nrecipient = [\"a/b\"]", "config.toml:2:1: mattermost.recipient: unknown key (did you mean recipients?); [mattermost] accepts ca_file, concurrency, recipients, token, token_file, url"},
		{"unknown key, wrong case", "[log]\nSeverity = \"INFO\"", "config.toml:2:1: log.Severity: unknown key (did you mean severity?); [log] accepts output, severity"},
		{"unknown key far off", "[teleport]\n\"proxy server\" = \"x\"", `config.toml:2:1: teleport."proxy server": unknown key; [teleport] accepts addr, auth_server, client_crt, client_key, identity, refresh_identity, root_cas`},
		{"key before any table", "url = \"x\"", "config.toml:1:1: url: key outside any table; it belongs under [mattermost]"},
		{"unknown key before any table", "colour = \"x\"", "config.toml:1:1: colour: key outside any table; it belongs under [teleport], [mattermost], [role_to_recipients] or [log]"},
		{"duplicate key", "[log]\noutput = \"a\"\n\noutput = \"b\"", "config.toml:4:1: log.output: duplicate key; it was first set at config.toml:2:1"},
		{"duplicate key, once quoted", "[log]\noutput = \"a\"\n\"output\" = \"b\"", "config.toml:3:1: log.output: duplicate key; it was first set at config.toml:2:1"},
		{"duplicate role", "[role_to_recipients]\n\"*\" = [\"a/b\"]\n '*' = [\"c/d\"]", `config.toml:3:2: role_to_recipients."*": duplicate key; it was first set at config.toml:2:1`},
		{"duplicate table", "[log]\n[teleport]\n  [log]", "config.toml:3:3: duplicate table [log]; it was first defined at config.toml:1:1"},
		{"duplicate table, once quoted", "[log]\n[\"log\"]", "config.toml:2:1: duplicate table [log]; it was first defined at config.toml:1:1"},
		// Types.
		{"string for boolean", "[teleport]\nrefresh_identity = \"yes\"", "config.toml:2:20: teleport.refresh_identity: expected a boolean, found a string"},
		{"string for integer", "[mattermost]\nconcurrency = \"8\"", "config.toml:2:15: mattermost.concurrency: expected an integer, found a string"},
		{"string for array", "[mattermost]\nrecipients = \"a/b\"", "config.toml:2:14: mattermost.recipients: expected an array, found a string"},
		{"integer for string", "[mattermost]\nurl = 443", "config.toml:2:7: mattermost.url: expected a string, found an integer"},
		{"array for string", "[teleport]\naddr = [\"a:1\"]", "config.toml:2:8: teleport.addr: expected a string, found an array"},
		{"role not an array", "[role_to_recipients]\ndbadmin = \"a/b\"", "config.toml:2:11: role_to_recipients.dbadmin: expected an array of recipients, found a string"},
		// Values checked as they are read.
		{"concurrency zero", "[mattermost]\nconcurrency = 0", "config.toml:2:15: mattermost.concurrency: 0 is out of range; use 1 to 256"},
		{"concurrency too high", "[mattermost]\nconcurrency = 257", "config.toml:2:15: mattermost.concurrency: 257 is out of range; use 1 to 256"},
		{"concurrency negative", "[mattermost]\nconcurrency = -1", "config.toml:2:15: mattermost.concurrency: -1 is out of range; use 1 to 256"},
		{"bad severity", "[log]\nseverity = \"verbose\"", `config.toml:2:12: log.severity: "verbose" is not a severity; use DEBUG, INFO, WARN or ERROR`},
		{"empty role list", "[role_to_recipients]\ndbadmin = [ ]", "config.toml:2:11: role_to_recipients.dbadmin: empty list; name at least one recipient or remove the entry"},
		{"bad role recipient", "[role_to_recipients]\n\"*\" = [\"a/b\", \"myteam\"]", `config.toml:2:15: role_to_recipients."*"[1]: "myteam" is neither team/channel nor an email address`},
		{"addr and auth_server", "[teleport]\nauth_server = \"a:3025\"\naddr = \"b:443\"", "config.toml:3:1: teleport.addr: auth_server is an older name for addr; keep only addr (teleport.auth_server is set at config.toml:2:1)"},
		{"token and token_file", "[mattermost]\ntoken = \"t\"\ntoken_file = \"/t\"", "config.toml:3:1: mattermost.token_file: set token or token_file, not both (mattermost.token is set at config.toml:2:1)"},
		// Text.
		{"lone carriage return", "[log]\routput = \"x\"", "config.toml:1:6: carriage return not followed by a line feed"},
		{"control character", "[log]\noutput = \"a\x00b\"", `config.toml:2:12: control character U+0000; write it as an escape in a "string"`},
		{"control character in comment", "# a\x1b[31m red comment", `config.toml:1:4: control character U+001B; write it as an escape in a "string"`},
		{"delete character", "[log]\x7f", `config.toml:1:6: control character U+007F; write it as an escape in a "string"`},
		{"invalid UTF-8", "[log]\noutput = \"é\xff\"", "config.toml:2:12: invalid UTF-8; the file must be UTF-8 text"},
		{"BOM in the middle", "[log]\n\uFEFFoutput = \"x\"", "config.toml:2:1: expected a key, found '\\ufeff'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("config.toml", []byte(tt.text))
			assertConfigError(t, err, tt.want)
		})
	}
}

func assertConfigError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Errorf("error\n got: %s\nwant: %s", err, want)
	}
	var ce *configError
	if !errors.As(err, &ce) {
		t.Errorf("error is a %T, want a *configError", err)
	}
}

func TestParseConfigValidation(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"addr missing", variant(t, "addr = \"teleport.example.com:443\"\n", ""),
			"config.toml: teleport.addr: required: set it to the Teleport proxy (host:443) or auth server (host:3025) address"},
		{"addr without port", variant(t, ".com:443", ".com"),
			`config.toml:2:1: teleport.addr: "teleport.example.com" has no port; add :443 for a proxy or :3025 for an auth server`},
		{"auth_server without port", variant(t, "addr = \"teleport.example.com:443\"", "auth_server = \"auth.example.com\""),
			`config.toml:2:1: teleport.auth_server: "auth.example.com" has no port; add :443 for a proxy or :3025 for an auth server`},
		{"addr with scheme", variant(t, `"teleport.example.com:443"`, `"https://teleport.example.com:443"`),
			`config.toml:2:1: teleport.addr: "https://teleport.example.com:443" has a scheme; write host:port, such as teleport.example.com:443`},
		{"addr with named port", variant(t, ":443", ":https"),
			`config.toml:2:1: teleport.addr: "teleport.example.com:https" is not host:port with a port from 1 to 65535`},
		{"addr port out of range", variant(t, ":443", ":65536"),
			`config.toml:2:1: teleport.addr: "teleport.example.com:65536" is not host:port with a port from 1 to 65535`},
		{"addr without host", variant(t, "teleport.example.com:443", ":443"),
			`config.toml:2:1: teleport.addr: ":443" is not host:port with a port from 1 to 65535`},
		{"no credentials", variant(t, "identity = \"/var/lib/teleport/plugins/mattermost/identity\"\n", ""),
			"config.toml: teleport.identity: required: set identity to the plugin's identity file (tctl auth sign --format=file), or client_key, client_crt and root_cas"},
		{"identity and key pair", variant(t, "[mattermost]", "client_key = \"/k\"\n[mattermost]"),
			"config.toml:3:1: teleport.identity: set either identity or client_key, client_crt and root_cas, not both"},
		{"partial key pair", variant(t, "identity = \"/var/lib/teleport/plugins/mattermost/identity\"", "client_crt = \"/c\""),
			"config.toml: teleport.client_key: missing: client_key, client_crt and root_cas go together; set client_key and root_cas"},
		{"url missing", variant(t, "url = \"https://mattermost.example.com\"\n", ""),
			"config.toml: mattermost.url: required: set it to the Mattermost server's address, such as https://mattermost.example.com"},
		{"url without scheme", variant(t, "https://mattermost", "mattermost"),
			`config.toml:5:1: mattermost.url: "mattermost.example.com" must start with https:// (or http://)`},
		{"url with host and port but no scheme", variant(t, "https://mattermost.example.com", "mattermost.example.com:8065"),
			`config.toml:5:1: mattermost.url: "mattermost.example.com:8065" must start with https:// (or http://)`},
		{"url with other scheme", variant(t, "https://", "ftp://"),
			`config.toml:5:1: mattermost.url: "ftp://mattermost.example.com" must start with https:// (or http://)`},
		{"url without host", variant(t, "https://mattermost.example.com", "https:///api"),
			`config.toml:5:1: mattermost.url: "https:///api" has no host`},
		{"url with query", variant(t, ".com\"", ".com/?team=x\""),
			`config.toml:5:1: mattermost.url: "https://mattermost.example.com/?team=x" must not have a query (?) or fragment (#)`},
		{"url with empty query", variant(t, ".com\"", ".com?\""),
			`config.toml:5:1: mattermost.url: "https://mattermost.example.com?" must not have a query (?) or fragment (#)`},
		{"url with fragment", variant(t, ".com\"", ".com/#/x\""),
			`config.toml:5:1: mattermost.url: "https://mattermost.example.com/#/x" must not have a query (?) or fragment (#)`},
		{"url with password", variant(t, "https://", "https://bot:hunter2@"),
			"config.toml:5:1: mattermost.url: must not hold a user name or password; the bot token goes in token or token_file"},
		{"url unparsable", variant(t, ".com\"", ".com:port\""),
			`config.toml:5:1: mattermost.url: not a valid URL: invalid port ":port" after host`},
		{"token missing", variant(t, "token = \"bot-token\"\n", ""),
			"config.toml: mattermost.token: required: set token to the bot's access token, or token_file to a file holding it"},
		{"empty token", variant(t, `"bot-token"`, `""`),
			"config.toml:6:1: mattermost.token: required: set token to the bot's access token, or token_file to a file holding it"},
		{"token with a space", variant(t, `"bot-token"`, `"bot token"`),
			"config.toml:6:1: mattermost.token: the token holds whitespace or control characters; it must contain only the bot's access token"},
		{"recipients and role_to_recipients", baseConfig + "recipients = [\"a/b\"]\n[role_to_recipients]\n\"*\" = [\"c/d\"]",
			`config.toml:7:1: mattermost.recipients: cannot be combined with [role_to_recipients]; list these recipients under "*" there instead`},
		{"empty output", baseConfig + "[log]\noutput = \"\"",
			`config.toml:8:1: log.output: is empty; use "stdout", "stderr" or a file path`},
		// Recipients are checked as they are read, each naming its index.
		{"recipient without slash or @", baseConfig + "recipients = [\"a/b\", \"x@y.z\", \"myteam\"]",
			`config.toml:7:31: mattermost.recipients[2]: "myteam" is neither team/channel nor an email address`},
		{"recipient with two slashes", baseConfig + "recipients = [\n  \"a/b/c\",\n]",
			`config.toml:8:3: mattermost.recipients[0]: "a/b/c" has more than one slash; write team/channel`},
		{"recipient without team", baseConfig + "recipients = [\"/general\"]",
			`config.toml:7:15: mattermost.recipients[0]: "/general" needs both a team and a channel: team/channel`},
		{"recipient with blank channel", baseConfig + "recipients = [\"myteam/ \"]",
			`config.toml:7:15: mattermost.recipients[0]: "myteam/" needs both a team and a channel: team/channel`},
		{"recipient with team display name", baseConfig + "recipients = [\"My Team/general\"]",
			`config.toml:7:15: mattermost.recipients[0]: "My Team/general" has a space in the team part, which must be the team's name from its URL`},
		{"empty recipient", baseConfig + "recipients = [\"\"]",
			`config.toml:7:15: mattermost.recipients[0]: "" is neither team/channel nor an email address`},
		{"email with space", baseConfig + "recipients = [\"first last@example.com\"]",
			`config.toml:7:15: mattermost.recipients[0]: "first last@example.com" is not an email address: it contains a space`},
		{"email without local part", baseConfig + "recipients = [\"@example.com\"]",
			`config.toml:7:15: mattermost.recipients[0]: "@example.com" is not an email address: it needs exactly one @ with a name before it`},
		{"email with two @", baseConfig + "recipients = [\"a@b@example.com\"]",
			`config.toml:7:15: mattermost.recipients[0]: "a@b@example.com" is not an email address: it needs exactly one @ with a name before it`},
		{"email without dot", baseConfig + "recipients = [\"root@localhost\"]",
			`config.toml:7:15: mattermost.recipients[0]: "root@localhost" is not an email address: the domain must be a dotted name such as example.com`},
		{"email with empty label", baseConfig + "recipients = [\"a@example..com\"]",
			`config.toml:7:15: mattermost.recipients[0]: "a@example..com" is not an email address: the domain must be a dotted name such as example.com`},
		{"recipient with control character", baseConfig + "recipients = [\"a/b\\u0007\"]",
			`config.toml:7:15: mattermost.recipients[0]: "a/b\a" contains a control character`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("config.toml", []byte(tt.text))
			assertConfigError(t, err, tt.want)
		})
	}
}

func TestParseConfigNormalisesURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://mattermost.example.com/":       "https://mattermost.example.com",
		"https://mattermost.example.com//":      "https://mattermost.example.com",
		"http://10.0.0.5:8065/mattermost/":      "http://10.0.0.5:8065/mattermost",
		"HTTPS://Mattermost.example.com:443/mm": "HTTPS://Mattermost.example.com:443/mm",
	} {
		cfg := mustParse(t, variant(t, "https://mattermost.example.com", raw))
		if cfg.Mattermost.URL != want {
			t.Errorf("url %q: got %q, want %q", raw, cfg.Mattermost.URL, want)
		}
	}
}

// TestErrorsNeverShowToken breaks the line holding the token in every way we
// can think of: no message may repeat it, or a large piece of it.
func TestErrorsNeverShowToken(t *testing.T) {
	const token = "xq7tk4e9bjgmdp3ri5cw8yszoh"
	lines := []string{
		`token = ` + token,
		`token = "` + token,
		`token = '` + token,
		`token = "` + token + `\q"`,
		`token = "` + token + `" x`,
		`token = "` + token + ` "`,
		`token = "` + token + `\n"`,
		`token = ["` + token + `"]`,
		`token = [` + token + `]`,
		`token = 1` + token,
		`token = 0x` + token,
		`token = {` + token + `}`,
		`token = """` + token + `"""`,
		`token = "` + token + "\x01\"",
		`token = "` + token + "\xff\"",
		`token = "` + token + "\"\ntoken = \"" + token + `"`,
		`token = "` + token + "\"\ntoken_file = \"/t\"",
		`tokn = "` + token + `"`,
		`token.value = "` + token + `"`,
	}
	for _, line := range lines {
		text := strings.Replace(baseConfig, `token = "bot-token"`, line, 1)
		_, err := parseConfig("config.toml", []byte(text))
		if err == nil {
			t.Errorf("%q: no error", line)
			continue
		}
		for i := 0; i+4 <= len(token); i++ {
			if strings.Contains(err.Error(), token[i:i+4]) {
				t.Errorf("%q: error shows part of the token: %v", line, err)
				break
			}
		}
	}
}

func TestParseRecipient(t *testing.T) {
	tests := map[string]recipient{
		"myteam/general":          {Team: "myteam", Channel: "general"},
		"myteam/Town Square":      {Team: "myteam", Channel: "Town Square"},
		"  myteam / Town Square ": {Team: "myteam", Channel: "Town Square"},
		"myteam/ops@example.com":  {Team: "myteam", Channel: "ops@example.com"},
		"first.last@example.com":  {Email: "first.last@example.com"},
		" First@Sub.Example.COM ": {Email: "First@Sub.Example.COM"},
		"a+tag@example.co.uk":     {Email: "a+tag@example.co.uk"},
	}
	for in, want := range tests {
		got, err := parseRecipient(in)
		if err != nil || got != want {
			t.Errorf("parseRecipient(%q) = %#v, %v; want %#v", in, got, err, want)
		}
		if again, err := parseRecipient(got.String()); err != nil || again != got {
			t.Errorf("parseRecipient(%q) = %#v, %v; want it to round-trip", got.String(), again, err)
		}
	}
	for _, in := range []string{"", "myteam", "a/b/c", "/b", "a/", "a b/c", "@x.y", "a@b", "a@.b", "a@b.", "a b@c.d", "a@b@c.d", "a/\tb\n"} {
		if r, err := parseRecipient(in); err == nil {
			t.Errorf("parseRecipient(%q) = %#v, want an error", in, r)
		}
	}
}

func TestRecipientsFor(t *testing.T) {
	a, b, c := recipient{Team: "t", Channel: "a"}, recipient{Team: "t", Channel: "b"}, recipient{Team: "t", Channel: "c"}
	mail, mailUpper := recipient{Email: "lead@example.com"}, recipient{Email: "Lead@Example.com"}
	roles := map[string][]recipient{
		"*":       {a},
		"dbadmin": {b, mail},
		"auditor": {mailUpper, c, b},
		"editor":  {a, c},
	}
	tests := []struct {
		name   string
		cfg    Config
		roles  []string
		want   []recipient
		wantNo bool
	}{
		{"recipients win over roles", Config{Mattermost: mattermostConfig{Recipients: []recipient{a, b}}}, []string{"dbadmin"}, []recipient{a, b}, false},
		{"recipients de-duplicated", Config{Mattermost: mattermostConfig{Recipients: []recipient{a, mail, a, mailUpper}}}, nil, []recipient{a, mail}, false},
		{"one role", Config{RoleToRecipients: roles}, []string{"dbadmin"}, []recipient{b, mail}, false},
		{"role without entry uses *", Config{RoleToRecipients: roles}, []string{"viewer"}, []recipient{a}, false},
		{"union in order, emails case-insensitive", Config{RoleToRecipients: roles}, []string{"dbadmin", "auditor", "viewer"}, []recipient{b, mail, c, a}, false},
		{"* listed once", Config{RoleToRecipients: roles}, []string{"viewer", "editor", "guest"}, []recipient{a, c}, false},
		{"no * entry", Config{RoleToRecipients: map[string][]recipient{"dbadmin": {b}}}, []string{"viewer"}, nil, true},
		{"no roles", Config{RoleToRecipients: roles}, nil, nil, true},
		{"neither", Config{}, []string{"dbadmin"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.recipientsFor(tt.roles)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if tt.wantNo && got != nil {
				t.Errorf("got %#v, want nil", got)
			}
		})
	}
	// The result is the caller's: changing it leaves the config alone.
	cfg := Config{RoleToRecipients: roles}
	cfg.recipientsFor([]string{"dbadmin"})[0] = c
	if roles["dbadmin"][0] != b {
		t.Error("recipientsFor returned the config's own slice")
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode passes through the umask
		t.Fatal(err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, "token")
	withTokenFile := strings.Replace(baseConfig, `token = "bot-token"`, `token_file = "`+tokenPath+`"`, 1)

	t.Run("inline token", func(t *testing.T) {
		path := filepath.Join(dir, "inline.toml")
		writeFile(t, path, baseConfig, 0o600)
		cfg, err := loadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Path != path || cfg.Mattermost.Token != "bot-token" || cfg.Mattermost.TokenFile != "" {
			t.Errorf("got Path %q, Token %q, TokenFile %q", cfg.Path, cfg.Mattermost.Token, cfg.Mattermost.TokenFile)
		}
	})
	t.Run("token_file", func(t *testing.T) {
		path := filepath.Join(dir, "file.toml")
		writeFile(t, path, withTokenFile, 0o644)
		writeFile(t, tokenPath, "  file-token\r\n\n", 0o600)
		cfg, err := loadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Mattermost.Token != "file-token" || cfg.Mattermost.TokenFile != tokenPath {
			t.Errorf("got Token %q, TokenFile %q", cfg.Mattermost.Token, cfg.Mattermost.TokenFile)
		}
		// parseConfig alone leaves the file unread.
		parsed := mustParse(t, withTokenFile)
		if parsed.Mattermost.Token != "" || parsed.Mattermost.TokenFile != tokenPath || parsed.Path != "" {
			t.Errorf("parseConfig: got Token %q, TokenFile %q, Path %q", parsed.Mattermost.Token, parsed.Mattermost.TokenFile, parsed.Path)
		}
	})
	t.Run("empty token_file", func(t *testing.T) {
		path := filepath.Join(dir, "empty.toml")
		writeFile(t, path, withTokenFile, 0o600)
		writeFile(t, tokenPath, " \n", 0o600)
		_, err := loadConfig(path)
		assertConfigError(t, err, path+": mattermost.token_file: "+tokenPath+" is empty; write the bot's access token into it")
	})
	t.Run("token_file with two lines", func(t *testing.T) {
		path := filepath.Join(dir, "lines.toml")
		writeFile(t, path, withTokenFile, 0o600)
		writeFile(t, tokenPath, "xq7tk4e9bjgm\ndp3ri5cw8ysz\n", 0o600)
		_, err := loadConfig(path)
		assertConfigError(t, err, path+": mattermost.token_file: "+tokenPath+" holds whitespace or control characters; it must contain only the bot's access token")
	})
	t.Run("token_file missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing-token.toml")
		missing := filepath.Join(dir, "no-such-token")
		writeFile(t, path, strings.Replace(withTokenFile, tokenPath, missing, 1), 0o600)
		_, err := loadConfig(path)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) || !strings.HasPrefix(err.Error(), path+": mattermost.token_file: ") {
			t.Errorf("got %v; want a not-exist error naming %s and the key", err, missing)
		}
	})
	t.Run("config missing", func(t *testing.T) {
		missing := filepath.Join(dir, "no-such.toml")
		_, err := loadConfig(missing)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Errorf("got %v; want a not-exist error naming %s", err, missing)
		}
	})
	t.Run("invalid config names the path", func(t *testing.T) {
		path := filepath.Join(dir, "invalid.toml")
		writeFile(t, path, baseConfig+"recipients = [\"myteam\"]\n", 0o600)
		_, err := loadConfig(path)
		assertConfigError(t, err, path+`:7:15: mattermost.recipients[0]: "myteam" is neither team/channel nor an email address`)
	})
}

func TestSecretFileWarnings(t *testing.T) {
	dir := t.TempDir()
	configPath, tokenPath := filepath.Join(dir, "config.toml"), filepath.Join(dir, "token")
	tests := []struct {
		name                  string
		tokenFile             string
		configMode, tokenMode os.FileMode
		want                  []string
	}{
		{"inline token, private", "", 0o600, 0o600, nil},
		{"inline token, readable by others", "", 0o644, 0o600,
			[]string{configPath + " holds the Mattermost bot token but group or others may access it (mode 0644); run: chmod 600 " + configPath}},
		{"inline token, writable by group", "", 0o620, 0o600,
			[]string{configPath + " holds the Mattermost bot token but group or others may access it (mode 0620); run: chmod 600 " + configPath}},
		{"token file, private; config file holds no secret", tokenPath, 0o644, 0o400, nil},
		{"token file readable by group", tokenPath, 0o600, 0o640,
			[]string{tokenPath + " holds the Mattermost bot token but group or others may access it (mode 0640); run: chmod 600 " + tokenPath}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, configPath, "", tt.configMode)
			writeFile(t, tokenPath, "", tt.tokenMode)
			cfg := &Config{Path: configPath, Mattermost: mattermostConfig{TokenFile: tt.tokenFile}}
			if got := secretFileWarnings(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
	if got := secretFileWarnings(&Config{}); got != nil {
		t.Errorf("no files: got %q", got)
	}
}

// commentedSetting matches the example's commented-out settings and table.
var commentedSetting = regexp.MustCompile(`^# (\[role_to_recipients\]$|"[^"]*" = \[|[a-z_]+ = )`)

func TestExampleConfig(t *testing.T) {
	cfg := mustParse(t, exampleConfig)
	if cfg.Teleport.Identity == "" || len(cfg.Mattermost.Recipients) == 0 || cfg.RoleToRecipients != nil {
		t.Errorf("example parsed to %+v", cfg)
	}
	// Every key is shown, set or commented out.
	for _, table := range []string{"teleport", "mattermost", "log"} {
		for _, key := range acceptedKeys(table) {
			if key != "auth_server" && !strings.Contains(exampleConfig, "\n"+key+" = ") && !strings.Contains(exampleConfig, "\n# "+key+" = ") {
				t.Errorf("example has no line for %s.%s", table, key)
			}
		}
	}
	// The operator's own values keep it valid.
	own := strings.NewReplacer(
		"teleport.example.com:443", "tele.corp.internal:3025",
		"/var/lib/teleport/plugins/mattermost/identity", "/opt/plugin/identity",
		"https://mattermost.example.com", "https://chat.corp.internal/",
		"REPLACE-WITH-BOT-TOKEN", "9a8b7c6d5e4f3a2b1c0d9e8f7a",
	).Replace(exampleConfig)
	if cfg := mustParse(t, own); cfg.Teleport.Addr != "tele.corp.internal:3025" || cfg.Mattermost.URL != "https://chat.corp.internal" {
		t.Errorf("edited example parsed to %+v", cfg)
	}
	// So do the commented alternatives: the key pair, token_file, ca_file and
	// role_to_recipients instead of recipients.
	lines := strings.Split(exampleConfig, "\n")
	var alt []string
	inRecipients := false
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "identity = "), strings.HasPrefix(line, "token = "):
			continue
		case strings.HasPrefix(line, "recipients = ["):
			inRecipients = true
		case inRecipients:
			inRecipients = line != "]"
		case commentedSetting.MatchString(line):
			alt = append(alt, strings.TrimPrefix(line, "# "))
		default:
			alt = append(alt, line)
		}
	}
	cfg = mustParse(t, strings.Join(alt, "\n"))
	if cfg.Teleport.ClientKey == "" || cfg.Mattermost.TokenFile == "" || cfg.Mattermost.CAFile == "" || len(cfg.RoleToRecipients["dbadmin"]) != 2 {
		t.Errorf("example with its alternatives parsed to %+v", cfg)
	}
}

func TestConfigErrorFormat(t *testing.T) {
	tests := []struct {
		err  configError
		want string
	}{
		{configError{File: "c.toml", Line: 7, Col: 9, Key: "log.output", Msg: "bad"}, "c.toml:7:9: log.output: bad"},
		{configError{File: "c.toml", Line: 7, Col: 9, Msg: "bad"}, "c.toml:7:9: bad"},
		{configError{File: "c.toml", Key: "teleport.addr", Msg: "required"}, "c.toml: teleport.addr: required"},
		{configError{Line: 1, Col: 2, Msg: "bad"}, "1:2: bad"},
		{configError{Key: "k", Msg: "bad"}, "k: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
