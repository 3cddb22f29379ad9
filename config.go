package main

// SKELETON: the config helper replaces this file, keeping these declarations.

import "log/slog"

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
	Concurrency int // requests handled at once; default 8, 1..256
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

// parseRecipient accepts "team/channel" or an email address.
func parseRecipient(s string) (recipient, error) { panic("todo") }

// loadConfig reads, parses and validates the file at path, and reads token_file.
func loadConfig(path string) (*Config, error) { panic("todo") }

// parseConfig parses and validates config text; name is used in errors.
// It does not touch the file system (token_file is read by loadConfig).
func parseConfig(name string, data []byte) (*Config, error) { panic("todo") }

// recipientsFor returns the static recipients for a request for roles.
func (c *Config) recipientsFor(roles []string) []recipient { panic("todo") }

// exampleConfig is what `configure` prints.
const exampleConfig = ``
