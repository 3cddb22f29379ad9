package main

// The bot token is a secret: it must never reach a log line, an error, or
// check's report, whatever goes wrong; the files holding it should not be
// readable by others; and it can live in token_file and be rotated by SIGHUP.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gravitational/teleport/api/types"
)

// wantNoSecret fails if text holds any of the secrets.
func wantNoSecret(t testing.TB, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds the token %q:\n%s", what, s, text)
		}
	}
}

// faultPlan injects each listed fault once, in order, into the calls that
// match it, and remembers which fired.
type faultPlan struct {
	mu     sync.Mutex
	faults []plannedFault
}

type plannedFault struct {
	name   string
	match  func(r *http.Request) bool
	status int
	header http.Header
	fired  bool
}

func (p *faultPlan) apply(r *http.Request) (int, http.Header) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.faults {
		f := &p.faults[i]
		if !f.fired && f.match(r) {
			f.fired = true
			return f.status, f.header
		}
	}
	return 0, nil
}

func (p *faultPlan) unfired() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, f := range p.faults {
		if !f.fired {
			out = append(out, f.name)
		}
	}
	return out
}

func callTo(method, prefix string) func(r *http.Request) bool {
	return func(r *http.Request) bool { return r.Method == method && strings.HasPrefix(r.URL.Path, prefix) }
}

// TestTokenNeverInLogsOrErrors runs a whole request lifecycle at DEBUG with
// every kind of Mattermost failure, and a reload with a rejected token, and
// looks for either token in the log and in every error the daemon returned.
func TestTokenNeverInLogsOrErrors(t *testing.T) {
	h := newHarness(t, `recipients = ["myteam/general", "alice@example.com"]`)
	badToken := fakeID()
	plan := &faultPlan{faults: []plannedFault{
		{name: "429 with X-Ratelimit-Reset on a user lookup", match: callTo("GET", "/api/v4/users/email/"),
			status: http.StatusTooManyRequests, header: http.Header{"X-Ratelimit-Reset": {"0.02"}}},
		{name: "500 on a post", match: callTo("POST", "/api/v4/posts"), status: http.StatusInternalServerError},
		{name: "429 with Retry-After on a post", match: callTo("POST", "/api/v4/posts"),
			status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"0.02"}}},
		{name: "401 on an edit", match: callTo("PUT", "/api/v4/posts/"), status: http.StatusUnauthorized},
		{name: "403 on a reply", match: func(r *http.Request) bool {
			if r.Method != "POST" || r.URL.Path != "/api/v4/posts" {
				return false
			}
			body, _ := io.ReadAll(r.Body)
			return strings.Contains(string(body), `"root_id"`)
		}, status: http.StatusForbidden},
	}}
	h.mm.setFault(plan.apply)
	h.start()

	req := h.auth.createRequest("carol", []string{"editor"}, "lifecycle")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending && len(d.Posts) == 2 })
	h.auth.addReview(req.GetName(), "bob", true, "fine")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.Reviews == 1 })
	h.auth.resolve(req.GetName(), types.RequestState_APPROVED, "done")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.Done })

	cliConfig{token: badToken, mattermost: `recipients = ["myteam/general"]`, severity: "DEBUG"}.write(t, h)
	reloadErr := h.sighup()
	if reloadErr == nil || !strings.Contains(reloadErr.Error(), "rejected the bot token") {
		t.Fatalf("reload with a bad token: %v, want it rejected", reloadErr)
	}
	// The running token is kept: the next request is still delivered.
	next := h.auth.createRequest("carol", []string{"editor"}, "after the bad reload")
	h.waitRoots(h.general, next.GetName(), 1)
	h.auth.deleteRequest(next.GetName())
	h.mm.waitFor(t, "the expired post", func() bool {
		roots := h.roots(h.general)
		last := roots[len(roots)-1]
		return strings.Contains(last.Message, next.GetName()) && strings.Contains(last.Message, stateExpired)
	})
	h.stop()

	if left := plan.unfired(); len(left) > 0 {
		t.Errorf("faults never injected: %q", left)
	}
	log := h.log()
	wantIn(t, "log", log, "level=DEBUG", "Mattermost call failed, retrying", "429", "500",
		"request not fully delivered", "rejected the bot token")
	wantNoSecret(t, "the log", log, h.mm.token, badToken)
	wantNoSecret(t, "the reload error", reloadErr.Error(), h.mm.token, badToken)
	h.mu.Lock()
	handled := h.handled
	h.mu.Unlock()
	failures := 0
	for _, x := range handled {
		if x.err != nil {
			failures++
			wantNoSecret(t, "a handling error", x.err.Error(), h.mm.token, badToken)
		}
	}
	if failures == 0 {
		t.Error("no handling failed: the faults did not reach the daemon's errors")
	}
}

func TestRunStartRejectedTokenIsOneLineWithoutIt(t *testing.T) {
	h := newHarness(t, oneChannel)
	badToken := fakeID()
	path := cliConfig{token: badToken, mattermost: oneChannel}.write(t, h)
	code, out, errOut := runCLI("start", "--config", path)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	wantOneLine(t, "stderr", errOut, "teleport-mattermost: mattermost at "+h.mm.URL()+" rejected the bot token", "token_file")
	wantNoSecret(t, "stderr", errOut, badToken, h.mm.token)
	wantNoSecret(t, "the log", h.log(), badToken, h.mm.token)
}

func TestCheckOutputNeverShowsToken(t *testing.T) {
	h := checkHarness(t)
	badToken := fakeID()
	for _, c := range []struct {
		name string
		conf cliConfig
		want []string
	}{
		{"good token, bad recipients", cliConfig{mattermost: `recipients = ["myteam/general", "myteam/secret", "x@example.com"]`},
			[]string{"warn ", "FAIL recipient"}},
		{"rejected token", cliConfig{token: badToken, mattermost: oneChannel}, []string{"warn ", "FAIL mattermost"}},
		{"config error after the token", cliConfig{token: badToken, mattermost: "recipients = [\"myteam/general\"]\nbogus = 1"},
			[]string{"FAIL config", "bogus"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := c.conf.write(t, h)
			if err := os.Chmod(path, 0o644); err != nil { // the warning names the file, not the secret
				t.Fatal(err)
			}
			_, out, errOut := runCLI("check", "--config", path)
			wantIn(t, "output", out, c.want...)
			wantNoSecret(t, "check's output", out+errOut, h.mm.token, badToken)
		})
	}
}

// TestStartWarnsAboutReadableSecretFiles: the warning names the file that
// holds the token (the config, or token_file), and only when others may read it.
func TestStartWarnsAboutReadableSecretFiles(t *testing.T) {
	const warning = "holds the Mattermost bot token but group or others may access it"
	for _, c := range []struct {
		name                  string
		tokenFile             bool
		configMode, tokenMode os.FileMode
		warnConfig, warnToken bool
	}{
		{"inline token, private config", false, 0o600, 0, false, false},
		{"inline token, config readable by all", false, 0o644, 0, true, false},
		{"inline token, config readable by group", false, 0o640, 0, true, false},
		{"token_file private, config readable", true, 0o644, 0o600, false, false},
		{"token_file readable by group", true, 0o600, 0o640, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, oneChannel)
			tokenFile := filepath.Join(h.dir, "token")
			conf := cliConfig{mattermost: oneChannel, severity: "DEBUG"}
			if c.tokenFile {
				conf.tokenFile = tokenFile
				if err := os.WriteFile(tokenFile, []byte(h.mm.token+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(tokenFile, c.tokenMode); err != nil {
					t.Fatal(err)
				}
			}
			conf.write(t, h)
			if err := os.Chmod(h.config, c.configMode); err != nil {
				t.Fatal(err)
			}
			h.start()
			log := h.log()
			warns := map[string]bool{}
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, warning) && strings.Contains(l, "level=WARN") {
					warns[h.config] = warns[h.config] || strings.Contains(l, "msg=\""+h.config+" ")
					warns[tokenFile] = warns[tokenFile] || strings.Contains(l, "msg=\""+tokenFile+" ")
				}
			}
			if warns[h.config] != c.warnConfig || warns[tokenFile] != c.warnToken {
				t.Errorf("warned about config %v, token file %v; want %v, %v; log:\n%s",
					warns[h.config], warns[tokenFile], c.warnConfig, c.warnToken, log)
			}
			if c.warnConfig || c.warnToken {
				wantIn(t, "log", log, "chmod 600 ")
			}
			wantNoSecret(t, "the log", log, h.mm.token)
		})
	}
}

// TestTokenFileRotatedBySIGHUP: the daemon starts with token_file, and after
// the token is rotated (the server accepts only the new one) and the file
// rewritten, SIGHUP makes later calls use the new token.
func TestTokenFileRotatedBySIGHUP(t *testing.T) {
	h := newHarness(t, oneChannel)
	tokenFile := filepath.Join(h.dir, "token")
	oldToken := h.mm.token
	if err := os.WriteFile(tokenFile, []byte(oldToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cliConfig{tokenFile: tokenFile, mattermost: oneChannel, severity: "DEBUG"}.write(t, h)
	if code, out, _ := runCLI("check", "--config", h.config); code != 0 {
		t.Errorf("check with token_file: exit %d:\n%s", code, out)
	}
	h.start()
	first := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitPluginData(first.GetName(), func(d pluginData) bool { return d.State == statePending })

	// Rotate: from now on the server accepts only the new token. The daemon
	// is idle (the request above is fully handled), so no call is in flight.
	newToken := fakeID()
	h.mm.mu.Lock()
	h.mm.token = newToken
	h.mm.mu.Unlock()
	if err := os.WriteFile(tokenFile, []byte(newToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.sighup(); err != nil {
		t.Fatalf("reload after rotating the token: %v", err)
	}
	second := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.general, second.GetName(), 1)
	h.waitPluginData(second.GetName(), func(d pluginData) bool { return d.State == statePending })
	for _, c := range h.mm.calls() {
		if c.Status == http.StatusUnauthorized {
			t.Errorf("a call was refused after the reload: %v", c)
		}
	}
	h.stop()
	wantNoSecret(t, "the log", h.log(), oldToken, newToken)
}
