package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Config is the validated configuration of the daemon.
type Config struct {
	Path             string                 // the file it was read from
	Teleport         teleportConfig         // [teleport]
	Mattermost       mattermostConfig       // [mattermost]
	RoleToRecipients map[string][]recipient // [role_to_recipients]; nil when absent
	Log              logConfig              // [log]
}

type teleportConfig struct {
	Addr            string // addr, or its older alias auth_server
	Identity        string // identity file path, or ""
	ClientKey       string // the key/crt/cas trio, when Identity is ""
	ClientCrt       string
	RootCAs         string
	RefreshIdentity bool // default true
}

type mattermostConfig struct {
	URL         string // http(s)://host[:port][/path], no trailing slash
	Token       string // from token, or the trimmed contents of token_file
	TokenFile   string // "" when the token is inline
	CAFile      string // optional PEM bundle for a private CA
	Recipients  []recipient
	Concurrency int // Mattermost calls in flight; default 8, 1..256
}

type logConfig struct {
	Output   string     // "stdout", "stderr" or a file path; default "stderr"
	Severity slog.Level // default INFO
}

// recipient is one place a request is posted to: a channel of a team, or a
// user's direct messages by email.
type recipient struct {
	Team    string // with Channel: "team/channel" (Channel may be a display name)
	Channel string
	Email   string // or: a user's email
}

func (r recipient) String() string {
	if r.Email != "" {
		return r.Email
	}
	return r.Team + "/" + r.Channel
}

// dedupeKey identifies a recipient for de-duplication; Mattermost matches
// emails case-insensitively, so two spellings of one address are one recipient.
func (r recipient) dedupeKey() string {
	if r.Email != "" {
		return "@" + strings.ToLower(r.Email)
	}
	return "#" + r.String()
}

// parseRecipient accepts "team/channel" or an email address.
func parseRecipient(s string) (recipient, error) {
	s = strings.TrimSpace(s)
	team, channel, isChannel := strings.Cut(s, "/")
	team, channel = strings.TrimSpace(team), strings.TrimSpace(channel)
	local, domain, isEmail := strings.Cut(s, "@")
	labels := strings.Split(domain, ".")
	var problem string
	switch {
	case strings.ContainsFunc(s, unicode.IsControl):
		problem = "contains a control character"
	case isChannel && strings.Contains(channel, "/"):
		problem = "has more than one slash; write team/channel"
	case isChannel && (team == "" || channel == ""):
		problem = "needs both a team and a channel: team/channel"
	case isChannel && strings.ContainsFunc(team, unicode.IsSpace):
		problem = "has a space in the team part, which must be the team's name from its URL"
	case isChannel:
		return recipient{Team: team, Channel: channel}, nil
	case !isEmail:
		problem = "is neither team/channel nor an email address"
	case strings.ContainsFunc(s, unicode.IsSpace):
		problem = "is not an email address: it contains a space"
	case local == "" || strings.Contains(domain, "@"):
		problem = "is not an email address: it needs exactly one @ with a name before it"
	case len(labels) < 2 || slices.Contains(labels, ""):
		problem = "is not an email address: the domain must be a dotted name such as example.com"
	default:
		return recipient{Email: s}, nil
	}
	return recipient{}, fmt.Errorf("%q %s", s, problem)
}

// loadConfig reads, parses and validates the file at path, and reads token_file.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w", err)
	}
	cfg, err := parseConfig(path, data)
	if err != nil {
		return nil, err
	}
	cfg.Path = path
	if m := &cfg.Mattermost; m.TokenFile != "" {
		data, err := os.ReadFile(m.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("%s: mattermost.token_file: %w", path, err)
		}
		m.Token = strings.TrimSpace(string(data))
		msg := tokenProblem(m.Token) // never the token itself
		if m.Token == "" {
			msg = "is empty; write the bot's access token into it"
		}
		if msg != "" {
			return nil, &configError{File: path, Key: "mattermost.token_file", Msg: m.TokenFile + " " + msg}
		}
	}
	return cfg, nil
}

// tokenProblem rejects what cannot be a bearer token (it would break the
// Authorization header), without repeating the secret.
func tokenProblem(token string) string {
	if strings.ContainsFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "holds whitespace or control characters; it must contain only the bot's access token"
	}
	return ""
}

// secretFileWarnings warns about the file holding the bot token (token_file,
// or the config file when the token is inline) when group or others may
// access it. A config file that uses token_file holds no secret.
func secretFileWarnings(cfg *Config) []string {
	path := cmp.Or(cfg.Mattermost.TokenFile, cfg.Path)
	if path == "" {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm()&0o077 == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s holds the Mattermost bot token but group or others may access it (mode %04o); run: chmod 600 %s",
		path, info.Mode().Perm(), path)}
}

// parseConfig parses and validates config text; name is used in errors.
// It does not touch the file system (token_file is read by loadConfig).
func parseConfig(name string, data []byte) (*Config, error) {
	p := &configParser{file: name, src: strings.TrimPrefix(string(data), "\uFEFF"), pos: position{1, 1},
		tables: map[string]position{}, where: map[string]position{}, cfg: &Config{
			Teleport:   teleportConfig{RefreshIdentity: true},
			Mattermost: mattermostConfig{Concurrency: 8},
			Log:        logConfig{Output: "stderr", Severity: slog.LevelInfo},
		}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	if err := p.cfg.validate(name, p.where); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// recipientsFor returns the static recipients for a request for roles:
// recipients when set, else the union of each role's list (the "*" list for a
// role without one), de-duplicated in first-seen order; nil when none apply.
func (c *Config) recipientsFor(roles []string) []recipient {
	all := c.Mattermost.Recipients
	if len(all) == 0 && c.RoleToRecipients != nil {
		for _, role := range roles {
			list, ok := c.RoleToRecipients[role]
			if !ok {
				list = c.RoleToRecipients["*"]
			}
			all = append(slices.Clip(all), list...)
		}
	}
	return dedupeRecipients(all)
}

// dedupeRecipients keeps the first of each recipient (emails compared
// without case), in order.
func dedupeRecipients(rs []recipient) []recipient {
	var out []recipient
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		if k := r.dedupeKey(); !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// configError is every error about the config's content: the file, the place
// in it when the problem sits at one (Line 0 when not, e.g. a missing key),
// the key concerned and what is wrong. Empty parts are left out of Error.
type configError struct {
	File      string
	Line, Col int
	Key, Msg  string
}

func (e *configError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = strings.TrimPrefix(fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col), ":")
	}
	return strings.Join(slices.DeleteFunc([]string{loc, e.Key, e.Msg}, func(s string) bool { return s == "" }), ": ")
}

// configTables are the accepted tables, in the order messages list them.
var configTables = []string{"teleport", "mattermost", "role_to_recipients", "log"}

// fields maps each key of the fixed tables to where its value goes; the type
// of the pointer gives the TOML type the key takes.
func (c *Config) fields() map[string]any {
	t, m := &c.Teleport, &c.Mattermost
	return map[string]any{
		"teleport.addr": &t.Addr, "teleport.auth_server": &t.Addr, "teleport.identity": &t.Identity,
		"teleport.client_key": &t.ClientKey, "teleport.client_crt": &t.ClientCrt, "teleport.root_cas": &t.RootCAs,
		"teleport.refresh_identity": &t.RefreshIdentity, "mattermost.url": &m.URL, "mattermost.token": &m.Token,
		"mattermost.token_file": &m.TokenFile, "mattermost.ca_file": &m.CAFile, "mattermost.recipients": &m.Recipients,
		"mattermost.concurrency": &m.Concurrency, "log.output": &c.Log.Output, "log.severity": &c.Log.Severity,
	}
}

// kindOf is the type a key takes, from the field its value goes to (see fields).
func kindOf(dst any) valueKind {
	switch dst.(type) {
	case *bool:
		return kindBoolean
	case *int:
		return kindInteger
	case *[]recipient:
		return kindArray
	}
	return kindString
}

// acceptedKeys lists the keys of a fixed table, sorted.
func acceptedKeys(table string) []string {
	var keys []string
	for k := range (&Config{}).fields() {
		if t, key, _ := strings.Cut(k, "."); t == table {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}

// exclusiveKeys are pairs of keys that may not both be set, and what to do.
var exclusiveKeys = [][3]string{
	{"teleport.addr", "teleport.auth_server", "auth_server is an older name for addr; keep only addr"},
	{"mattermost.token", "mattermost.token_file", "set token or token_file, not both"},
}

// set checks a key read at start (known, right type, not twice, not with the
// key it excludes) and stores its value in the Config.
func (p *configParser) set(start position, key string, v tomlValue) (err error) {
	name := qualifiedKey(p.table, key)
	if first, dup := p.where[name]; dup {
		return newConfigError(p.file, start, name, "duplicate key; it was first set at %s:%s", p.file, first)
	}
	p.where[name] = start
	if p.table == "role_to_recipients" {
		return p.setRole(key, v)
	}
	dst, known := p.cfg.fields()[name]
	switch {
	case !known && p.table == "":
		home := "[teleport], [mattermost], [role_to_recipients] or [log]"
		for _, t := range configTables {
			if slices.Contains(acceptedKeys(t), key) {
				home = "[" + t + "]"
			}
		}
		return newConfigError(p.file, start, name, "key outside any table; it belongs under %s", home)
	case !known:
		keys := acceptedKeys(p.table)
		return newConfigError(p.file, start, name, "unknown key%s; [%s] accepts %s", suggestName(key, keys, "%s"), p.table, strings.Join(keys, ", "))
	case v.kind != kindOf(dst):
		return newConfigError(p.file, v.pos, name, "expected %s, found %s", kindOf(dst), v.kind)
	}
	for _, pair := range exclusiveKeys {
		if i := slices.Index(pair[:2], name); i >= 0 {
			if at, both := p.where[pair[1-i]]; both {
				return newConfigError(p.file, start, name, "%s (%s is set at %s:%s)", pair[2], pair[1-i], p.file, at)
			}
		}
	}
	switch dst := dst.(type) {
	case *string:
		*dst = v.str
	case *bool:
		*dst = v.boolean
	case *[]recipient:
		*dst, err = p.recipients(name, v)
	case *int: // concurrency
		if v.num < 1 || v.num > 256 {
			return newConfigError(p.file, v.pos, name, "%d is out of range; use 1 to 256", v.num)
		}
		*dst = int(v.num)
	case *slog.Level:
		levels := map[string]slog.Level{"DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo,
			"WARN": slog.LevelWarn, "WARNING": slog.LevelWarn, "ERROR": slog.LevelError}
		level, ok := levels[strings.ToUpper(strings.TrimSpace(v.str))]
		if !ok {
			return newConfigError(p.file, v.pos, name, "%q is not a severity; use DEBUG, INFO, WARN or ERROR", v.str)
		}
		*dst = level
	}
	return err
}

// setRole stores a [role_to_recipients] entry: any role name to a non-empty list.
func (p *configParser) setRole(role string, v tomlValue) (err error) {
	name := qualifiedKey(p.table, role)
	switch {
	case v.kind != kindArray:
		return newConfigError(p.file, v.pos, name, "expected an array of recipients, found %s", v.kind)
	case len(v.items) == 0:
		return newConfigError(p.file, v.pos, name, "empty list; name at least one recipient or remove the entry")
	}
	p.cfg.RoleToRecipients[role], err = p.recipients(name, v)
	return err
}

func (p *configParser) recipients(key string, v tomlValue) ([]recipient, error) {
	var list []recipient
	for i, item := range v.items {
		r, err := parseRecipient(item.str)
		if err != nil {
			return nil, newConfigError(p.file, item.pos, fmt.Sprintf("%s[%d]", key, i), "%v", err)
		}
		list = append(list, r)
	}
	return list, nil
}

// suggestName returns " (did you mean X?)" for the accepted name closest to a
// mistyped one, or "" when none is close.
func suggestName(name string, accepted []string, format string) string {
	best, bestDist := "", 3
	for _, a := range accepted {
		if d := editDistance(strings.ToLower(name), a); d < bestDist {
			best, bestDist = a, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + fmt.Sprintf(format, best) + "?)"
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	rb := []rune(b)
	prev := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i, ra := range []rune(a) {
		cur := []int{i + 1}
		for j := range rb {
			cost := 1
			if ra == rb[j] {
				cost = 0
			}
			cur = append(cur, min(prev[j+1]+1, cur[j]+1, prev[j]+cost))
		}
		prev = cur
	}
	return prev[len(rb)]
}

// validate checks the rules that span keys or need more than a type, and
// normalises the URL. where gives a key's position for messages; it may be
// nil. A Config it accepted passes again unchanged.
func (c *Config) validate(file string, where map[string]position) error {
	fail := func(key, msg string) error { return newConfigError(file, where[key], key, "%s", msg) }
	addrKey := "teleport.addr"
	if _, alias := where["teleport.auth_server"]; alias {
		addrKey = "teleport.auth_server"
	}
	if msg := addrProblem(c.Teleport.Addr); msg != "" {
		return fail(addrKey, msg)
	}
	if key, msg := credentialsProblem(c.Teleport); msg != "" {
		return fail(key, msg)
	}
	m := &c.Mattermost
	normal, msg := normalURL(m.URL)
	if msg != "" {
		return fail("mattermost.url", msg)
	}
	m.URL = normal
	tokenKey := "mattermost.token"
	if m.TokenFile != "" {
		tokenKey = "mattermost.token_file"
	}
	switch {
	case m.Token == "" && m.TokenFile == "":
		return fail(tokenKey, "required: set token to the bot's access token, or token_file to a file holding it")
	case tokenProblem(m.Token) != "":
		return fail(tokenKey, "the token "+tokenProblem(m.Token))
	case len(m.Recipients) > 0 && len(c.RoleToRecipients) > 0:
		return fail("mattermost.recipients", `cannot be combined with [role_to_recipients]; list these recipients under "*" there instead`)
	case c.Log.Output == "":
		return fail("log.output", `is empty; use "stdout", "stderr" or a file path`)
	}
	return nil
}

// addrProblem checks that a Teleport address is host:port.
func addrProblem(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, portErr := strconv.Atoi(port)
	switch {
	case addr == "":
		return "required: set it to the Teleport proxy (host:443) or auth server (host:3025) address"
	case strings.Contains(addr, "://"):
		return fmt.Sprintf("%q has a scheme; write host:port, such as teleport.example.com:443", addr)
	case err != nil && strings.Contains(err.Error(), "missing port"):
		return fmt.Sprintf("%q has no port; add :443 for a proxy or :3025 for an auth server", addr)
	case err != nil || host == "" || portErr != nil || n < 1 || n > 65535:
		return fmt.Sprintf("%q is not host:port with a port from 1 to 65535", addr)
	}
	return ""
}

// credentialsProblem checks that exactly one way to authenticate to Teleport
// is set, returning the key to blame and what to do.
func credentialsProblem(t teleportConfig) (key, msg string) {
	var set, missing []string
	for _, f := range []struct{ key, val string }{{"client_key", t.ClientKey}, {"client_crt", t.ClientCrt}, {"root_cas", t.RootCAs}} {
		if f.val == "" {
			missing = append(missing, f.key)
		} else {
			set = append(set, f.key)
		}
	}
	switch {
	case t.Identity != "" && len(set) > 0:
		return "teleport.identity", "set either identity or client_key, client_crt and root_cas, not both"
	case t.Identity == "" && len(set) == 0:
		return "teleport.identity", "required: set identity to the plugin's identity file (tctl auth sign --format=file), or client_key, client_crt and root_cas"
	case t.Identity == "" && len(missing) > 0:
		return "teleport." + missing[0], "missing: client_key, client_crt and root_cas go together; set " + strings.Join(missing, " and ")
	}
	return "", ""
}

// normalURL checks the Mattermost address and trims trailing slashes, so that
// API paths can be appended.
func normalURL(raw string) (string, string) {
	u, err := url.Parse(raw)
	if urlErr := (*url.Error)(nil); errors.As(err, &urlErr) {
		err = urlErr.Err // without the URL, which may hold a password
	}
	switch {
	case raw == "":
		return "", "required: set it to the Mattermost server's address, such as https://mattermost.example.com"
	case err != nil:
		return "", fmt.Sprintf("not a valid URL: %v", err)
	case u.User != nil:
		return "", "must not hold a user name or password; the bot token goes in token or token_file"
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Sprintf("%q must start with https:// (or http://)", raw)
	case u.Hostname() == "":
		return "", fmt.Sprintf("%q has no host", raw)
	case strings.ContainsAny(raw, "?#"):
		return "", fmt.Sprintf("%q must not have a query (?) or fragment (#)", raw)
	}
	return strings.TrimRight(raw, "/"), ""
}

// exampleConfig is what `configure` prints.
const exampleConfig = `# teleport-mattermost configuration.
# "teleport-mattermost start" reads /etc/teleport-mattermost.toml, or the file
# given with --config. Replace the example values below with your own.

[teleport]
# Address of the Teleport Proxy Service (usually port 443) or of the Auth
# Service (port 3025), as host:port. "auth_server" is an older name for it.
addr = "teleport.example.com:443"

# Identity file of the plugin's Teleport user, made with
#   tctl auth sign --user=access-plugin --format=file --out=identity
identity = "/var/lib/teleport/plugins/mattermost/identity"

# Instead of identity: a key, a certificate and the cluster's CA certificates,
# all three together (tctl auth sign --format=tls).
# client_key = "/var/lib/teleport/plugins/mattermost/auth.key"
# client_crt = "/var/lib/teleport/plugins/mattermost/auth.crt"
# root_cas = "/var/lib/teleport/plugins/mattermost/auth.cas"

# Re-read the identity (or key and certificate) periodically and on SIGHUP,
# so that renewed short-lived credentials are picked up without a restart.
refresh_identity = true

[mattermost]
# Address of the Mattermost server: http:// or https://, no query.
url = "https://mattermost.example.com"

# Access token of the bot account that posts the requests. Set token, or
# token_file: the path of a file holding only the token (read at start and on
# SIGHUP), so that the secret need not live in this file.
token = "REPLACE-WITH-BOT-TOKEN"
# token_file = "/var/lib/teleport/plugins/mattermost/token"

# PEM file of the CA certificates to trust instead of the system's, for a
# server whose certificate is signed by a private CA.
# ca_file = "/etc/teleport-mattermost/ca.pem"

# Where every access request is posted: "team/channel" (the team's name as in
# its URL, then the channel's name or display name; invite the bot to the
# channel) or a user's email address (a direct message from the bot).
# Suggested reviewers with an email address are messaged too. Without
# recipients or [role_to_recipients], only suggested reviewers are notified.
recipients = [
  "myteam/access-requests",
  "first.last@example.com",
]

# Mattermost calls in flight at once, 1 to 256; up to four times as many
# access requests are worked on at once.
concurrency = 8

# Instead of recipients: recipients per requested role. A role without an
# entry of its own uses "*".
# [role_to_recipients]
# "*" = ["myteam/access-requests"]
# "dbadmin" = ["myteam/dba", "dba-lead@example.com"]

[log]
# Where log lines go: "stderr", "stdout" or a file path.
output = "stderr"
# DEBUG, INFO, WARN or ERROR; "start --debug" forces DEBUG.
severity = "INFO"
`
