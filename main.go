// Command teleport-mattermost posts Teleport Access Requests to Mattermost
// channels and direct messages, and keeps those posts up to date as the
// requests are reviewed, resolved or expire.
//
//	teleport-mattermost configure > /etc/teleport-mattermost.toml
//	teleport-mattermost check --config /etc/teleport-mattermost.toml
//	teleport-mattermost start --config /etc/teleport-mattermost.toml [-d]
//	teleport-mattermost version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "v0.1.0"
	commit  = "unknown"
)

const defaultConfigPath = "/etc/teleport-mattermost.toml"

const usage = `teleport-mattermost posts Teleport Access Requests to Mattermost.

Usage:
  teleport-mattermost configure                 print an example config (TOML) to stdout
  teleport-mattermost check [--config PATH]     check the config, Teleport, Mattermost and every recipient
  teleport-mattermost start [--config PATH] [-d] run the daemon (SIGHUP reloads, SIGTERM stops)
  teleport-mattermost version                   print the version

The default config path is ` + defaultConfigPath + `.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command line; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "configure":
		fmt.Fprint(stdout, exampleConfig)
		return 0
	case "version":
		fmt.Fprintf(stdout, "teleport-mattermost %s git:%s %s\n", version, commit, runtime.Version())
		return 0
	case "start":
		path, debug, ok := parseFlags("start", rest, stderr)
		if !ok {
			return 2
		}
		return exitCode(runDaemon(path, debug), stderr)
	case "check":
		path, _, ok := parseFlags("check", rest, stderr)
		if !ok {
			return 2
		}
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		return check(ctx, path, stdout)
	default:
		if cmd != "help" && cmd != "-h" && cmd != "--help" {
			fmt.Fprintf(stderr, "teleport-mattermost: unknown command %q\n\n", cmd)
		}
		fmt.Fprint(stderr, usage)
		return 2
	}
}

func parseFlags(cmd string, args []string, stderr io.Writer) (path string, debug bool, ok bool) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&path, "config", defaultConfigPath, "path to the config file")
	fs.BoolVar(&debug, "d", false, "log at DEBUG level, whatever [log] severity says")
	fs.BoolVar(&debug, "debug", false, "same as -d")
	if err := fs.Parse(args); err != nil {
		return "", false, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "teleport-mattermost %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return "", false, false
	}
	return path, debug, true
}

// runDaemon wires the process signals to start: SIGINT/SIGTERM stop it,
// SIGHUP reloads the config and identity.
func runDaemon(path string, debug bool) error {
	signals, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	// start sees the stop only once the signals' default action is back, so
	// a second SIGINT/SIGTERM (an impatient ^C) during the grace period for
	// in-flight posts ends the process at once instead of being swallowed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer context.AfterFunc(signals, func() { stopSignals(); cancel() })()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // a reload is pending already
				}
			}
		}
	}()
	return start(ctx, path, debug, reload)
}

// exitCode prints a start-up failure as the one line systemd's journal and
// the operator see.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "teleport-mattermost: %s\n", oneLine(err))
	return 1
}

// oneLine is err's text on a single line: the Teleport client reports each
// failed connection method on lines of their own, which would otherwise
// spread one failure over many journal entries.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// check connects to both sides and resolves every configured recipient,
// printing one line per item; it is what to run after editing the config.
func check(ctx context.Context, path string, out io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	failed := 0
	report := func(what string, err error) {
		if err != nil {
			failed++
			// Errors about a recipient start with it; say it once.
			fmt.Fprintf(out, "FAIL %s: %s\n", what, strings.TrimPrefix(oneLine(err), what+": "))
			return
		}
		fmt.Fprintf(out, "ok   %s\n", what)
	}
	cfg, err := loadConfig(path)
	report("config "+path, err)
	if err != nil {
		return 1
	}
	for _, w := range secretFileWarnings(cfg) {
		fmt.Fprintf(out, "warn %s\n", w)
	}
	clt, ping, err := connectTeleport(ctx, cfg.Teleport)
	report("teleport "+cfg.Teleport.Addr, err)
	if err == nil {
		fmt.Fprintf(out, "     cluster %s, Teleport %s, proxy %s\n", ping.ClusterName, ping.ServerVersion, ping.ProxyPublicAddr)
		clt.Close()
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mm, err := newMattermost(cfg.Mattermost, quiet)
	var me mmUser
	if err == nil {
		defer mm.http.CloseIdleConnections()
		me, err = mm.me(ctx)
	}
	if isUnauthorized(err) {
		err = fmt.Errorf("the bot token was rejected (check mattermost.token or token_file; create one under Integrations > Bot Accounts): %w", err)
	}
	report("mattermost "+cfg.Mattermost.URL, err)
	if err != nil {
		fmt.Fprintf(out, "%d problem(s) found; recipients not checked\n", failed)
		return 1
	}
	fmt.Fprintf(out, "     bot @%s\n", me.Username)
	recipients := staticRecipients(cfg)
	if len(recipients) == 0 {
		fmt.Fprintf(out, "     no recipients configured: only suggested reviewers with an email address are messaged\n")
	}
	for _, r := range recipients {
		id, err := mm.resolveRecipient(ctx, r, me.ID)
		if err == nil {
			err = botMayPost(ctx, mm, r, id, me)
		}
		report("recipient "+r.String(), err)
	}
	if failed > 0 {
		fmt.Fprintf(out, "%d problem(s) found\n", failed)
		return 1
	}
	return 0
}

// logOutput is the daemon's log destination and level, both of which a
// reload may change (e.g. after logrotate moved the file).
type logOutput struct {
	logger *slog.Logger
	level  slog.LevelVar

	mu   sync.Mutex
	w    io.Writer
	file *os.File // non-nil when logging to a file we opened
}

func openLogOutput(cfg logConfig, debug bool) (*logOutput, error) {
	l := &logOutput{}
	if err := l.reconfigure(cfg, debug); err != nil {
		return nil, err
	}
	l.logger = slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: &l.level}))
	return l, nil
}

func (l *logOutput) reconfigure(cfg logConfig, debug bool) error {
	var w io.Writer
	var file *os.File
	switch cfg.Output {
	case "", "stderr":
		w = os.Stderr
	case "stdout":
		w = os.Stdout
	default:
		f, err := os.OpenFile(cfg.Output, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return fmt.Errorf("log.output: %w", err)
		}
		w, file = f, f
	}
	level := cfg.Severity
	if debug {
		level = slog.LevelDebug
	}
	l.level.Set(level)
	l.mu.Lock()
	old := l.file
	l.w, l.file = w, file
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (l *logOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *logOutput) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	err := l.file.Close()
	l.file, l.w = nil, io.Discard
	return err
}
