package main

// Tests of the command line: run() in-process for the commands and the
// start-up failures, check against both fakes, and the test binary
// re-executed as the daemon for the real signal paths.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/types"
)

// mainEnv makes the test binary run main instead of the tests, so process
// tests exercise the real binary's signal handling without a go build.
const mainEnv = "TELEPORT_MATTERMOST_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// cliConfig is a config file for a harness's fakes; empty fields take the
// harness's values.
type cliConfig struct {
	addr       string // [teleport] addr
	creds      string // [teleport] credential lines; default: identity = h.identity
	token      string // [mattermost] token, when tokenFile is ""
	tokenFile  string
	mattermost string // further [mattermost] keys, then any other tables
	logOutput  string // default: the harness's log file
	severity   string // default: INFO
}

// write writes the config to h.config (mode 0600) and returns its path.
func (c cliConfig) write(t testing.TB, h *harness) string {
	t.Helper()
	if c.addr == "" {
		c.addr = h.auth.addr()
	}
	if c.creds == "" {
		c.creds = fmt.Sprintf("identity = %q", h.identity)
	}
	token := fmt.Sprintf("token = %q", h.mm.token)
	switch {
	case c.tokenFile != "":
		token = fmt.Sprintf("token_file = %q", c.tokenFile)
	case c.token != "":
		token = fmt.Sprintf("token = %q", c.token)
	}
	if c.logOutput == "" {
		c.logOutput = h.logFile
	}
	if c.severity == "" {
		c.severity = "INFO"
	}
	text := fmt.Sprintf(`[teleport]
addr = %q
%s

[mattermost]
url = %q
%s
%s

[log]
output = %q
severity = %q
`, c.addr, c.creds, h.mm.URL(), token, c.mattermost, c.logOutput, c.severity)
	if err := os.WriteFile(h.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return h.config
}

// runCLI is run with captured output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// wantOneLine checks that s is exactly one line holding every part.
func wantOneLine(t testing.TB, what, s string, parts ...string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s is not exactly one line:\n%s", what, s)
	}
	wantIn(t, what, s, parts...)
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"-h"}, {"--help"}, {"frobnicate"}, {"--config", "x"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing (usage goes to stderr)", out)
			}
			wantIn(t, "stderr", errOut, "Usage:", "teleport-mattermost start", "teleport-mattermost check", defaultConfigPath)
			unknown := len(args) > 0 && args[0] != "help" && args[0] != "-h" && args[0] != "--help"
			if got := strings.Contains(errOut, "unknown command"); got != unknown {
				t.Errorf("stderr mentions an unknown command: %v, want %v:\n%s", got, unknown, errOut)
			}
		})
	}
}

func TestRunConfigurePrintsAValidExample(t *testing.T) {
	code, out, errOut := runCLI("configure")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errOut)
	}
	if out != exampleConfig {
		t.Error("configure did not print exampleConfig")
	}
	cfg, err := parseConfig("configure output", []byte(out))
	if err != nil {
		t.Fatalf("configure output does not parse: %v", err)
	}
	if len(cfg.Mattermost.Recipients) == 0 || cfg.Teleport.Identity == "" {
		t.Errorf("example config lacks recipients or identity: %+v", cfg)
	}
}

func TestRunVersion(t *testing.T) {
	code, out, errOut := runCLI("version")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	re := regexp.MustCompile(`^teleport-mattermost v\d+\.\d+\.\d+\S* git:\S+ (\S+)\n$`)
	m := re.FindStringSubmatch(out)
	if m == nil || m[1] != runtime.Version() {
		t.Errorf("version printed %q, want teleport-mattermost vX.Y.Z git:<commit> %s", out, runtime.Version())
	}
}

func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args  []string
		path  string
		debug bool
		ok    bool
	}{
		{nil, defaultConfigPath, false, true},
		{[]string{"-d"}, defaultConfigPath, true, true},
		{[]string{"--debug"}, defaultConfigPath, true, true},
		{[]string{"-debug"}, defaultConfigPath, true, true},
		{[]string{"--config", "/x.toml", "-d"}, "/x.toml", true, true},
		{[]string{"--config=/etc/tm.toml"}, "/etc/tm.toml", false, true}, // the systemd unit's spelling
		{[]string{"-config", "a b.toml"}, "a b.toml", false, true},
		{[]string{"extra"}, "", false, false},
		{[]string{"--config", "/x.toml", "extra"}, "", false, false},
		{[]string{"--bogus"}, "", false, false},
		{[]string{"--config"}, "", false, false},
	} {
		var errOut bytes.Buffer
		path, debug, ok := parseFlags("start", c.args, &errOut)
		if ok != c.ok || (ok && (path != c.path || debug != c.debug)) {
			t.Errorf("parseFlags(%q) = %q, %v, %v; want %q, %v, %v", c.args, path, debug, ok, c.path, c.debug, c.ok)
		}
		if ok != (errOut.Len() == 0) {
			t.Errorf("parseFlags(%q) wrote %q to stderr (ok=%v)", c.args, errOut.String(), ok)
		}
	}
}

func TestRunStartArgumentErrors(t *testing.T) {
	for _, args := range [][]string{{"start", "now"}, {"start", "--nope"}, {"check", "x.toml"}} {
		code, out, errOut := runCLI(args...)
		if code != 2 || out != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", args, code, out)
		}
		if errOut == "" {
			t.Errorf("%q: nothing on stderr", args)
		}
	}
	_, _, errOut := runCLI("start", "now")
	wantIn(t, "stderr", errOut, `unexpected argument "now"`)
}

func TestRunStartMissingConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	code, out, errOut := runCLI("start", "--config", path)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	wantOneLine(t, "stderr", errOut, "teleport-mattermost: ", path, "no such file")
}

// TestRunStartIdentityProblems: each bad credential stops start-up with one
// line naming the file, before any call to Teleport.
func TestRunStartIdentityProblems(t *testing.T) {
	h := newHarness(t, oneChannel)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("\x00\x01 not an identity\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated")
	full, err := os.ReadFile(h.identity)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, full[:len(full)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	expired := filepath.Join(dir, "expired")
	h.auth.writeIdentityValid(t, expired, "plugin", time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	unreadable := filepath.Join(dir, "a-directory") // chmod 000 does not stop root
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	key, crt, cas := filepath.Join(dir, "auth.key"), filepath.Join(dir, "auth.crt"), filepath.Join(dir, "auth.cas")
	h.auth.writeKeyPair(t, key, crt, cas, "plugin")
	if err := os.Remove(crt); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, creds string
		want        []string
	}{
		{"missing", fmt.Sprintf("identity = %q", missing), []string{missing, "no such file"}},
		{"directory", fmt.Sprintf("identity = %q", unreadable), []string{unreadable, "is a directory"}},
		{"garbage", fmt.Sprintf("identity = %q", garbage), []string{garbage, "not a Teleport identity file"}},
		{"truncated", fmt.Sprintf("identity = %q", truncated), []string{truncated}},
		{"expired", fmt.Sprintf("identity = %q", expired), []string{expired, "expired at", "tctl auth sign"}},
		{"missing client_crt", fmt.Sprintf("client_key = %q\nclient_crt = %q\nroot_cas = %q", key, crt, cas), []string{crt, "client_crt"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := cliConfig{creds: c.creds}.write(t, h)
			code, out, errOut := runCLI("start", "--config", path)
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
			}
			wantOneLine(t, "stderr", errOut, append([]string{"teleport-mattermost: "}, c.want...)...)
		})
	}
	if rpcs := h.auth.rpcs(); len(rpcs) != 0 {
		t.Errorf("bad credentials reached Teleport: %q", rpcs)
	}
	if calls := h.mm.calls(); len(calls) != 0 {
		t.Errorf("start-up went on to Mattermost after a Teleport failure: %v", calls)
	}
}

// checkHarness seeds, besides the harness's channels, a private channel the
// bot is in and one it is not in.
func checkHarness(t *testing.T) *harness {
	h := newHarness(t, "")
	h.mm.addPrivateChannel("myteam", "vault", "Vault", true)
	h.mm.addPrivateChannel("myteam", "secret", "Secret", false)
	return h
}

func TestCheckAllOK(t *testing.T) {
	h := checkHarness(t)
	path := cliConfig{mattermost: `
[role_to_recipients]
editor = ["Alice@Example.com", "myteam/vault"]
"*" = ["myteam/general", "alice@example.com"]
dbadmin = ["myteam/dba", "myteam/general", "myteam/Town Square"]
`}.write(t, h)
	code, out, errOut := runCLI("check", "--config", path)
	want := fmt.Sprintf(`ok   config %s
ok   teleport %s
     cluster example.com, Teleport 17.0.0, proxy teleport.example.com:443
ok   mattermost %s
     bot @teleport
ok   recipient myteam/general
ok   recipient alice@example.com
ok   recipient myteam/dba
ok   recipient myteam/Town Square
ok   recipient myteam/vault
`, path, h.auth.addr(), h.mm.URL())
	if code != 0 || out != want || errOut != "" {
		t.Errorf("check: exit %d, stderr %q, output:\n%s\nwant exit 0 and:\n%s", code, errOut, out, want)
	}
	if n := len(h.mm.posts()); n != 0 {
		t.Errorf("check posted %d message(s)", n)
	}
}

func TestCheckNoRecipients(t *testing.T) {
	h := checkHarness(t)
	code, out, _ := runCLI("check", "--config", cliConfig{}.write(t, h))
	if code != 0 {
		t.Errorf("exit %d, want 0:\n%s", code, out)
	}
	wantIn(t, "output", out, "no recipients configured")
}

func TestCheckReportsEachBadRecipient(t *testing.T) {
	h := checkHarness(t)
	path := cliConfig{mattermost: `recipients = ["myteam/general", "otherteam/general", "nobody@example.com", "myteam/secret", "alice@example.com", "myteam/outsiders"]`}.write(t, h)
	code, out, _ := runCLI("check", "--config", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	lines := map[string]string{} // recipient -> its line
	for _, l := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(l, " recipient "); ok {
			name, _, _ := strings.Cut(rest, ": ")
			lines[name] = l
		}
	}
	for _, c := range []struct {
		recipient string
		ok        bool
		hint      []string
	}{
		{"myteam/general", true, nil},
		{"alice@example.com", true, nil},
		{"otherteam/general", false, []string{`team "otherteam" not found`, "check the team name"}},
		{"nobody@example.com", false, []string{`no Mattermost user with email "nobody@example.com"`}},
		{"myteam/secret", false, []string{`channel "secret" not found in team "myteam"`, "invite the bot: /invite @teleport"}},
		{"myteam/outsiders", false, []string{"the bot is not a member of the channel", "/invite @teleport"}},
	} {
		l := lines[c.recipient]
		prefix := "FAIL recipient " + c.recipient + ": "
		if c.ok {
			prefix = "ok   recipient " + c.recipient
		}
		if !strings.HasPrefix(l, prefix) {
			t.Errorf("line for %s is %q, want it to start with %q", c.recipient, l, prefix)
		}
		wantIn(t, "line", l, c.hint...)
		if strings.Contains(l, "recipient "+c.recipient+": recipient ") {
			t.Errorf("line names the recipient twice: %q", l)
		}
	}
	wantIn(t, "output", out, "\n4 problem(s) found\n")
}

func TestCheckBadToken(t *testing.T) {
	h := checkHarness(t)
	path := cliConfig{token: "not-the-bot-token", mattermost: oneChannel}.write(t, h)
	code, out, _ := runCLI("check", "--config", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantIn(t, "output", out, "ok   teleport ",
		"FAIL mattermost "+h.mm.URL()+": the bot token was rejected (check mattermost.token or token_file", "401",
		"recipients not checked")
	if strings.Contains(out, "recipient myteam/general") {
		t.Errorf("recipients checked without a working token:\n%s", out)
	}
}

func TestCheckGoesOnAfterTeleportFails(t *testing.T) {
	h := checkHarness(t)
	h.auth.setVersion("6.0.9")
	code, out, _ := runCLI("check", "--config", cliConfig{mattermost: oneChannel}.write(t, h))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantIn(t, "output", out, "FAIL teleport "+h.auth.addr()+": ", "too old", "ok   mattermost ",
		"ok   recipient myteam/general", "1 problem(s) found")
	if strings.Contains(out, "cluster example.com") {
		t.Errorf("cluster line printed for a refused server:\n%s", out)
	}
}

func TestCheckBadConfig(t *testing.T) {
	h := checkHarness(t)
	missing := filepath.Join(h.dir, "missing.toml")
	code, out, _ := runCLI("check", "--config", missing)
	if code != 1 || !strings.HasPrefix(out, "FAIL config "+missing+": ") || strings.Count(out, "\n") != 1 {
		t.Errorf("missing config: exit %d, output:\n%s", code, out)
	}
	path := cliConfig{mattermost: `recipients = ["general"]`}.write(t, h)
	code, out, _ = runCLI("check", "--config", path)
	if code != 1 || !strings.HasPrefix(out, "FAIL config "+path+": ") {
		t.Errorf("invalid recipient: exit %d, output:\n%s", code, out)
	}
	wantIn(t, "output", out, "mattermost.recipients[0]")
	if len(h.auth.rpcs()) != 0 || len(h.mm.calls()) != 0 {
		t.Error("check went on after a config error")
	}
}

func TestCheckWarnsAboutReadableConfig(t *testing.T) {
	h := checkHarness(t)
	path := cliConfig{mattermost: oneChannel}.write(t, h)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI("check", "--config", path)
	if code != 0 {
		t.Errorf("exit %d, want 0 (a warning is not a failure):\n%s", code, out)
	}
	wantIn(t, "output", out, "warn "+path+" holds the Mattermost bot token", "chmod 600 "+path)
}

// TestUnreachableTeleport is the one test that waits for the Teleport dial
// timeout (10s): the client retries a refused connection until then.
func TestUnreachableTeleport(t *testing.T) {
	t.Parallel()
	t.Run("start", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, oneChannel)
		cliConfig{addr: closedPort(t), logOutput: "stderr"}.write(t, h)
		p := startProcess(t, "start", "--config", h.config)
		if code := p.waitExit(30 * time.Second); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantOneLine(t, "stderr", p.stderr(), "teleport-mattermost: connect to Teleport at 127.0.0.1:")
		if len(h.mm.calls()) != 0 {
			t.Error("start-up went on to Mattermost")
		}
	})
	t.Run("check", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, oneChannel)
		addr := closedPort(t)
		code, out, _ := runCLI("check", "--config", cliConfig{addr: addr, mattermost: oneChannel}.write(t, h))
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantIn(t, "output", out, "FAIL teleport "+addr+": connect to Teleport at "+addr, "ok   mattermost ",
			"ok   recipient myteam/general", "1 problem(s) found")
		reportLine := regexp.MustCompile(`^(ok  |FAIL|warn| {4}) |^\d+ problem`)
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if !reportLine.MatchString(l) {
				t.Errorf("output line %q is not a report line (a multi-line error?)", l)
			}
		}
	})
}

// closedPort is an address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// daemonProcess is the test binary re-executed as teleport-mattermost.
type daemonProcess struct {
	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{} // closed once stderr is drained and the process reaped

	mu      sync.Mutex
	lines   []string      // stderr so far
	changed chan struct{} // closed and replaced on every line and at exit
	state   *os.ProcessState
}

// startProcess runs the daemon binary with args; it is killed at cleanup if
// still running.
func startProcess(t testing.TB, args ...string) *daemonProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &daemonProcess{t: t, exited: make(chan struct{}), changed: make(chan struct{})}
	p.cmd = exec.Command(exe, args...)
	// Under -race, a process exiting 0 waits a second for its threads
	// (atexit_sleep_ms); ours are done, so skip that.
	race := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	p.cmd.Env = append(os.Environ(), mainEnv+"=1", "GORACE="+race)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		// Wait only after the pipe is drained, as exec requires.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		p.cmd.Wait()
		p.mu.Lock()
		p.state = p.cmd.ProcessState
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("daemon stderr:\n%s", p.stderr())
		}
	})
	return p
}

func (p *daemonProcess) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 {
		return ""
	}
	return strings.Join(p.lines, "\n") + "\n"
}

// waitLine waits until a stderr line contains substr and returns it.
func (p *daemonProcess) waitLine(substr string) string {
	p.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for seen := 0; ; {
		p.mu.Lock()
		lines, changed, exited := p.lines, p.changed, p.state != nil
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if strings.Contains(lines[seen], substr) {
				return lines[seen]
			}
		}
		if exited { // every line was read before the exit was noted
			p.t.Fatalf("daemon exited without logging %q:\n%s", substr, p.stderr())
		}
		select {
		case <-changed:
		case <-deadline.C:
			p.t.Fatalf("daemon did not log %q within 10s:\n%s", substr, p.stderr())
		}
	}
}

func (p *daemonProcess) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for the process to end and returns its exit code (-1
// when a signal killed it).
func (p *daemonProcess) waitExit(within time.Duration) int {
	p.t.Helper()
	return p.waitState(within).ExitCode()
}

func (p *daemonProcess) waitState(within time.Duration) *os.ProcessState {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(within):
		p.t.Fatalf("daemon still running after %s:\n%s", within, p.stderr())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// TestProcessSIGTERMFinishesInFlightPost: SIGTERM while a post is on the
// wire lets it finish (and its plugin data be stored), then exits 0.
// -d forces DEBUG logging over severity = "INFO".
func TestProcessSIGTERMFinishesInFlightPost(t *testing.T) {
	h := newHarness(t, oneChannel)
	inFlight, unblock := holdPosts(t, h)
	cliConfig{mattermost: oneChannel, logOutput: "stderr", severity: "INFO"}.write(t, h)
	p := startProcess(t, "start", "--config", h.config, "-d")
	p.waitLine("watching access requests")
	p.waitLine("level=DEBUG")

	req := h.auth.createRequest("carol", []string{"editor"}, "")
	waitChan(t, inFlight, "a post on the wire")
	p.signal(syscall.SIGTERM)
	p.waitLine("stopping; finishing in-flight work")
	unblock()
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	h.waitRoots(h.general, req.GetName(), 1)
	if d, err := decodePluginData(h.auth.pluginData(req.GetName())); err != nil || len(d.Posts) != 1 {
		t.Errorf("plugin data after a graceful stop: %+v, %v; want the post stored", d, err)
	}
	log := p.stderr()
	wantIn(t, "stderr", log, "teleport-mattermost stopped")
	if strings.Contains(log, "work in flight") {
		t.Errorf("stopped with work in flight:\n%s", log)
	}
	if strings.Contains(log, h.mm.token) {
		t.Error("the DEBUG log holds the bot token")
	}
}

// holdPosts makes the Mattermost fake hold every POST /posts until unblock
// is called (at the latest at cleanup, before the fake's Close waits for
// its handlers); inFlight receives when one is held.
func holdPosts(t *testing.T, h *harness) (inFlight <-chan struct{}, unblock func()) {
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	unblock = func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	h.mm.setFault(func(r *http.Request) (int, http.Header) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v4/posts" {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
		}
		return 0, nil
	})
	return held, unblock
}

func waitChan(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestProcessSecondSignalEndsTheGracePeriod: a second SIGTERM while
// in-flight work holds the stop kills the process at once.
func TestProcessSecondSignalEndsTheGracePeriod(t *testing.T) {
	h := newHarness(t, oneChannel)
	inFlight, _ := holdPosts(t, h)
	cliConfig{mattermost: oneChannel, logOutput: "stderr"}.write(t, h)
	p := startProcess(t, "start", "--config", h.config)
	p.waitLine("watching access requests")
	h.auth.createRequest("carol", []string{"editor"}, "")
	waitChan(t, inFlight, "a post on the wire")
	p.signal(syscall.SIGTERM)
	p.waitLine("stopping; finishing in-flight work")
	p.signal(syscall.SIGTERM)
	state := p.waitState(5 * time.Second) // well inside the 15s grace
	if ws, ok := state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("daemon ended with %v, want killed by the second SIGTERM", state)
	}
}

// TestProcessSIGHUPReloadsThenSIGINTStops: the real SIGHUP path reloads the
// config (new recipients apply to the next request); SIGINT exits 0.
func TestProcessSIGHUPReloadsThenSIGINTStops(t *testing.T) {
	h := newHarness(t, oneChannel)
	conf := cliConfig{mattermost: oneChannel, logOutput: "stderr"}
	conf.write(t, h)
	p := startProcess(t, "start", "--config", h.config)
	p.waitLine("watching access requests")
	if strings.Contains(p.stderr(), "level=DEBUG") {
		t.Error("DEBUG lines without -d at severity INFO")
	}

	conf.mattermost = `recipients = ["myteam/dba"]`
	conf.write(t, h)
	p.signal(syscall.SIGHUP)
	p.waitLine("msg=reloaded")
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.dba, req.GetName(), 1)
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	if n := len(h.roots(h.general)); n != 0 {
		t.Errorf("%d post(s) to the recipient removed by the reload", n)
	}

	p.signal(syscall.SIGINT)
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGINT, want 0", code)
	}
	wantIn(t, "stderr", p.stderr(), "teleport-mattermost stopped")
}

// TestProcessStartsFromSystemdUnitFlags: the flag spelling of the shipped
// unit file (--config=PATH) starts the daemon; a resolved request after
// start is handled (the daemon is fully up), and SIGTERM exits 0.
func TestProcessStartsFromSystemdUnitFlags(t *testing.T) {
	h := newHarness(t, oneChannel)
	req := h.auth.createRequest("carol", []string{"editor"}, "filed before start")
	cliConfig{mattermost: oneChannel, logOutput: "stderr"}.write(t, h)
	p := startProcess(t, "start", "--config="+h.config)
	h.waitRoots(h.general, req.GetName(), 1)
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	h.auth.resolve(req.GetName(), types.RequestState_APPROVED, "ok")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.Done })
	p.signal(syscall.SIGTERM)
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}
