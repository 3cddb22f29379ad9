package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the client. Timeouts are per HTTP attempt; the caller's context
// bounds a whole call including its retries.
const (
	mmDialTimeout       = 10 * time.Second
	mmTLSTimeout        = 10 * time.Second
	mmHeaderTimeout     = 20 * time.Second
	mmAttemptTimeout    = 30 * time.Second
	mmBackoffStart      = 250 * time.Millisecond
	mmBackoffCap        = 10 * time.Second
	mmMaxAttempts       = 5
	mmRateLimitMax      = 60 * time.Second
	mmMaxAnswer         = 8 << 20 // a channel search answer is the largest we read
	mmErrorSnippet      = 200     // bytes of a non-JSON error body kept in the error
	mmUserAgent         = "teleport-mattermost"
	mmDefaultConcurrent = 8
)

// mattermost is a client of the Mattermost REST API v4, acting as the bot.
// It is safe for concurrent use by the daemon's workers.
type mattermost struct {
	base  string // scheme://host[/path], no trailing slash
	token string
	http  *http.Client
	log   *slog.Logger

	// The retry policy. newMattermost sets the production values; tests
	// shorten them so that they never wait for seconds.
	attemptTimeout time.Duration // one HTTP exchange, headers and body
	backoffStart   time.Duration // first backoff before full jitter
	backoffCap     time.Duration
	maxAttempts    int
	rateLimitMax   time.Duration                     // longest pause a 429 may impose
	jitter         func(time.Duration) time.Duration // full jitter: uniform in [0, d)

	// calls bounds the HTTP exchanges in flight (mattermost.concurrency)
	// however many requests are being handled: the bound protects
	// Mattermost, and a request waiting on Teleport holds no part of it.
	calls chan struct{}

	mu sync.Mutex
	// notBefore is shared by all calls: once the server answered 429, no
	// worker sends anything before the reset time, so that a rate-limited
	// server is not hammered by the daemon's concurrent workers.
	notBefore time.Time
	// botName is the bot's username once me() succeeded, for operator hints.
	botName string
}

func newMattermost(cfg mattermostConfig, log *slog.Logger) (*mattermost, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse errors quote the URL; the config may hold secrets in it, so
		// only the reason is kept.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("mattermost url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("mattermost url: must be http(s)://host[:port][/path]")
	}
	if u.User != nil {
		return nil, errors.New("mattermost url: must not contain a user name or password; the bot token authenticates")
	}
	if cfg.Token == "" {
		return nil, errors.New("mattermost: no token")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mattermost ca_file %q: %w", cfg.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mattermost ca_file %q: no PEM certificate in it", cfg.CAFile)
		}
		// The file replaces the system roots, as with curl --cacert: the
		// operator names exactly whom to trust.
		tlsConf.RootCAs = pool
	}
	conns := cfg.Concurrency
	if conns <= 0 {
		conns = mmDefaultConcurrent
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: mmDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   mmTLSTimeout,
		ResponseHeaderTimeout: mmHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		// Each worker may hold one connection per call; keep that many idle
		// so that a burst of posts reuses connections instead of redialling.
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &mattermost{
		base:  strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"),
		token: cfg.Token,
		http: &http.Client{
			Transport: transport,
			// A redirect would turn POST into GET and may carry the bearer
			// token elsewhere; the configured url must be the API's own.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log:            log,
		calls:          make(chan struct{}, conns),
		attemptTimeout: mmAttemptTimeout,
		backoffStart:   mmBackoffStart,
		backoffCap:     mmBackoffCap,
		maxAttempts:    mmMaxAttempts,
		rateLimitMax:   mmRateLimitMax,
		jitter: func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		},
	}, nil
}

type mmUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

type mmTeam struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
}

type mmChannel struct {
	ID          string `json:"id"`
	TeamID      string `json:"team_id"`
	Type        string `json:"type"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
}

type mmPost struct {
	ID        string         `json:"id,omitempty"`
	ChannelID string         `json:"channel_id"`
	RootID    string         `json:"root_id,omitempty"`
	Message   string         `json:"message"`
	Props     map[string]any `json:"props,omitempty"`
	CreateAt  int64          `json:"create_at,omitempty"`
	UpdateAt  int64          `json:"update_at,omitempty"`
	EditAt    int64          `json:"edit_at,omitempty"`
}

// apiError is an error answer from Mattermost, decoded from its JSON body.
// For a body that is not Mattermost's JSON (a proxy's HTML page), Message
// holds its sanitized beginning and ID is empty.
type apiError struct {
	Method, Path string
	Status       int
	ID           string
	Message      string
	RequestID    string
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mattermost: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	switch {
	case e.ID != "" && e.RequestID != "":
		fmt.Fprintf(&b, " (%s, request_id=%s)", e.ID, e.RequestID)
	case e.ID != "":
		fmt.Fprintf(&b, " (%s)", e.ID)
	case e.RequestID != "":
		fmt.Fprintf(&b, " (request_id=%s)", e.RequestID)
	}
	return b.String()
}

func (m *mattermost) me(ctx context.Context) (mmUser, error) {
	var u mmUser
	if err := m.call(ctx, http.MethodGet, "/users/me", nil, &u); err != nil {
		return mmUser{}, err
	}
	m.mu.Lock()
	m.botName = u.Username
	m.mu.Unlock()
	return u, nil
}

func (m *mattermost) teamByName(ctx context.Context, name string) (mmTeam, error) {
	var t mmTeam
	err := m.call(ctx, http.MethodGet, "/teams/name/"+url.PathEscape(name), nil, &t)
	return t, err
}

func (m *mattermost) userByEmail(ctx context.Context, email string) (mmUser, error) {
	var u mmUser
	err := m.call(ctx, http.MethodGet, "/users/email/"+url.PathEscape(email), nil, &u)
	return u, err
}

// createPost posts p. A retry after a timeout or a 5xx may post twice when the
// server did save the first attempt: Mattermost offers no idempotency key for
// bots that we rely on, and a rare duplicate is better than a lost request.
func (m *mattermost) createPost(ctx context.Context, p mmPost) (mmPost, error) {
	var out mmPost
	err := m.call(ctx, http.MethodPost, "/posts", p, &out)
	return out, err
}

func (m *mattermost) channelByName(ctx context.Context, team, name string) (mmChannel, error) {
	var c mmChannel
	err := m.call(ctx, http.MethodGet,
		"/teams/name/"+url.PathEscape(team)+"/channels/name/"+url.PathEscape(name), nil, &c)
	return c, err
}

// autocompleteChannels lists the team's channels whose name or display name
// starts with name, private ones the bot is in included (search leaves them out).
func (m *mattermost) autocompleteChannels(ctx context.Context, teamID, name string) ([]mmChannel, error) {
	var cs []mmChannel
	err := m.call(ctx, http.MethodGet, "/teams/"+url.PathEscape(teamID)+"/channels/autocomplete?name="+url.QueryEscape(name), nil, &cs)
	return cs, err
}

// isChannelMember reports whether userID is in channelID: the bot can look
// up an open channel it is not in, but posting there fails with 403. A real
// server answers this lookup with 403 too when the bot is not a member.
func (m *mattermost) isChannelMember(ctx context.Context, channelID, userID string) (bool, error) {
	var member struct {
		UserID string `json:"user_id"`
	}
	err := m.call(ctx, http.MethodGet, "/channels/"+url.PathEscape(channelID)+"/members/"+url.PathEscape(userID), nil, &member)
	if isNotFound(err) || isForbidden(err) {
		return false, nil
	}
	return err == nil, err
}

func (m *mattermost) searchChannels(ctx context.Context, teamID, term string) ([]mmChannel, error) {
	var cs []mmChannel
	err := m.call(ctx, http.MethodPost, "/teams/"+url.PathEscape(teamID)+"/channels/search",
		map[string]string{"term": term}, &cs)
	return cs, err
}

func (m *mattermost) directChannel(ctx context.Context, botID, userID string) (mmChannel, error) {
	var c mmChannel
	err := m.call(ctx, http.MethodPost, "/channels/direct", []string{botID, userID}, &c)
	return c, err
}

// patchPost changes only the given fields (PUT /posts/{id}/patch).
func (m *mattermost) patchPost(ctx context.Context, id, message string, props map[string]any) (mmPost, error) {
	// A map, not a struct with omitempty: an empty non-nil props must still
	// be sent, since it is how a caller clears them.
	body := map[string]any{"message": message}
	if props != nil {
		body["props"] = props
	}
	var out mmPost
	err := m.call(ctx, http.MethodPut, "/posts/"+url.PathEscape(id)+"/patch", body, &out)
	return out, err
}

// resolveRecipient finds the channel id to post to for r (with the
// display-name fallback and direct channels from botID to a user).
func (m *mattermost) resolveRecipient(ctx context.Context, r recipient, botID string) (string, error) {
	if r.Email != "" {
		u, err := m.userByEmail(ctx, r.Email)
		if isNotFound(err) {
			return "", fmt.Errorf("recipient %s: no Mattermost user with email %q: %w", r, r.Email, err)
		}
		if err != nil {
			return "", fmt.Errorf("recipient %s: %w", r, err)
		}
		c, err := m.directChannel(ctx, botID, u.ID)
		if err != nil {
			return "", fmt.Errorf("recipient %s: direct channel with @%s: %w", r, u.Username, err)
		}
		return c.ID, nil
	}

	c, err := m.channelByName(ctx, r.Team, r.Channel)
	if err == nil {
		return c.ID, nil
	}
	if !isNotFound(err) {
		return "", fmt.Errorf("recipient %s: %w", r, err)
	}
	// The name may be a display name ("Town Square"): the router rejects a
	// space outright, and a display name never matches the channel's name.
	notFound := err
	team, err := m.teamByName(ctx, r.Team)
	if isNotFound(err) {
		return "", fmt.Errorf("recipient %s: team %q not found (check the team name in the URL: /TEAM/channels/...): %w", r, r.Team, err)
	}
	if err != nil {
		return "", fmt.Errorf("recipient %s: %w", r, err)
	}
	found, err := m.searchChannels(ctx, team.ID, r.Channel)
	if err != nil {
		return "", fmt.Errorf("recipient %s: search channels of team %q: %w", r, r.Team, err)
	}
	if len(channelsNamed(found, r.Channel, strings.EqualFold)) == 0 {
		// Search leaves out private channels; autocomplete has the ones
		// the bot is in.
		if found, err = m.autocompleteChannels(ctx, team.ID, r.Channel); err != nil {
			return "", fmt.Errorf("recipient %s: look up channels of team %q: %w", r, r.Team, err)
		}
	}
	matches := channelsNamed(found, r.Channel, func(a, b string) bool { return a == b })
	if len(matches) == 0 {
		matches = channelsNamed(found, r.Channel, strings.EqualFold)
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("recipient %s: channel %q not found in team %q; if it is private, invite the bot: /invite @%s: %w",
			r, r.Channel, r.Team, m.botUsername(), notFound)
	case 1:
		return matches[0].ID, nil
	}
	names := make([]string, len(matches))
	for i, c := range matches {
		names[i] = c.Name
	}
	return "", fmt.Errorf("recipient %s: display name %q matches %d channels in team %q (%s); write the channel's name instead",
		r, r.Channel, len(matches), r.Team, strings.Join(names, ", "))
}

// channelsNamed keeps the channels whose display name equals name under eq.
func channelsNamed(cs []mmChannel, name string, eq func(a, b string) bool) []mmChannel {
	var out []mmChannel
	for _, c := range cs {
		if eq(c.DisplayName, name) {
			out = append(out, c)
		}
	}
	return out
}

func (m *mattermost) botUsername() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.botName == "" {
		return "<bot username>"
	}
	return m.botName
}

// Status helpers over wrapped *apiError.
func isUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }
func isNotFound(err error) bool     { return hasStatus(err, http.StatusNotFound) }
func isForbidden(err error) bool    { return hasStatus(err, http.StatusForbidden) }

func hasStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status
}

// call sends in (JSON, when not nil) to the API path (below /api/v4) and
// decodes the answer into out, retrying what may succeed on a later attempt.
func (m *mattermost) call(ctx context.Context, method, path string, in, out any) error {
	path = "/api/v4" + path
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("mattermost: %s %s: encode request: %w", method, path, err)
		}
	}
	for attempt := 1; ; attempt++ {
		release, err := m.slot(ctx)
		if err != nil {
			return fmt.Errorf("mattermost: %s %s: %w", method, path, err)
		}
		retry, pause, err := m.attempt(ctx, method, path, body, out)
		release()
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w; stopped retrying: %w", err, ctx.Err())
		}
		if attempt >= m.maxAttempts {
			if attempt == 1 {
				return err
			}
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		wait := pause
		if wait == 0 {
			wait = m.backoff(attempt)
		}
		m.log.WarnContext(ctx, "Mattermost call failed, retrying",
			"method", method, "path", path, "attempt", attempt, "wait", wait, "error", err)
		if cerr := sleepCtx(ctx, wait); cerr != nil {
			return fmt.Errorf("%w; stopped retrying: %w", err, cerr)
		}
	}
}

// attempt is one HTTP exchange. retry says whether another attempt may
// succeed; pause is how long a 429 asked us to wait (0: use the backoff).
func (m *mattermost) attempt(ctx context.Context, method, path string, body []byte, out any) (retry bool, pause time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, m.attemptTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, m.base+path, rd)
	if err != nil {
		return false, 0, fmt.Errorf("mattermost: %s %s: %w", method, path, m.transportCause(err))
	}
	req.Header.Set("Authorization", "Bearer "+m.token)
	req.Header.Set("User-Agent", mmUserAgent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	resp, err := m.http.Do(req)
	if err != nil {
		return m.transportFailure(ctx, actx, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, mmMaxAnswer))
	if err != nil {
		return m.transportFailure(ctx, actx, method, path, err)
	}
	m.log.DebugContext(ctx, "Mattermost call", "method", method, "path", path,
		"status", resp.StatusCode, "duration", time.Since(start))

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return false, 0, fmt.Errorf("mattermost: %s %s: decode answer: %w", method, path, err)
		}
		return false, 0, nil
	}

	ae := m.decodeError(method, path, resp, data)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		pause := m.rateLimitPause(resp.Header)
		if pause > 0 {
			m.mu.Lock()
			if until := time.Now().Add(pause); until.After(m.notBefore) {
				m.notBefore = until
			}
			m.mu.Unlock()
		}
		return true, pause, ae
	case resp.StatusCode >= 500:
		return true, 0, ae
	}
	return false, 0, ae
}

// transportFailure turns a failed exchange into an error: retried unless the
// caller gave up or the server's certificate is not trusted (which no retry
// mends).
func (m *mattermost) transportFailure(ctx, actx context.Context, method, path string, err error) (bool, time.Duration, error) {
	cause := m.transportCause(err)
	if ctx.Err() != nil {
		return false, 0, fmt.Errorf("mattermost: %s %s: %w", method, path, cause)
	}
	if actx.Err() != nil {
		return true, 0, fmt.Errorf("mattermost: %s %s: no answer within %s: %w", method, path, m.attemptTimeout, cause)
	}
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var ierr x509.CertificateInvalidError
	switch {
	case errors.As(err, &uerr):
		return false, 0, fmt.Errorf("mattermost: %s %s: %w (set ca_file to the CA that signed the server's certificate)", method, path, cause)
	case errors.As(err, &verr), errors.As(err, &herr), errors.As(err, &ierr):
		return false, 0, fmt.Errorf("mattermost: %s %s: %w", method, path, cause)
	}
	return true, 0, fmt.Errorf("mattermost: %s %s: %w", method, path, cause)
}

// transportCause drops *url.Error's quoted URL: the method and API path are
// already in our message, and the URL is not ours to print.
func (m *mattermost) transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeError reads Mattermost's JSON error body, or keeps the sanitized
// beginning of any other body.
func (m *mattermost) decodeError(method, path string, resp *http.Response, data []byte) *apiError {
	ae := &apiError{Method: method, Path: path, Status: resp.StatusCode}
	var body struct {
		ID        string `json:"id"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(data, &body) == nil && (body.ID != "" || body.Message != "") {
		ae.ID = m.sanitize(body.ID, 200)
		ae.Message = m.sanitize(body.Message, 500)
		ae.RequestID = m.sanitize(body.RequestID, 100)
		return ae
	}
	ae.Message = m.sanitize(string(data), mmErrorSnippet)
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		ae.Message = strings.TrimSpace(ae.Message + " (redirected to " + m.sanitize(loc, mmErrorSnippet) + "; set url to the final address)")
	}
	return ae
}

// sanitize makes server-provided text safe for a log line: valid UTF-8, no
// control characters, whitespace collapsed, at most max bytes, and never the
// token (a misbehaving proxy may echo the request).
func (m *mattermost) sanitize(s string, max int) string {
	if m.token != "" {
		s = strings.ReplaceAll(s, m.token, "[redacted]")
	}
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("...")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// rateLimitPause reads how long a 429 asks us to wait: Retry-After, else
// X-Ratelimit-Reset (both in seconds until the reset; fractions accepted),
// capped at rateLimitMax. 0 means neither header was usable.
func (m *mattermost) rateLimitPause(h http.Header) time.Duration {
	for _, name := range []string{"Retry-After", "X-Ratelimit-Reset"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		var d time.Duration
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
			// Capped before converting, so that a huge value cannot overflow.
			d = time.Duration(min(secs, m.rateLimitMax.Seconds()) * float64(time.Second)).Round(time.Millisecond)
		} else if at, err := http.ParseTime(v); err == nil && name == "Retry-After" {
			d = time.Until(at)
		} else {
			continue
		}
		// At least a millisecond: "0" still means the server wants a pause.
		return min(max(d, time.Millisecond), m.rateLimitMax)
	}
	return 0
}

// backoff is the capped exponential backoff with full jitter before the
// attempt after attempt (1-based).
func (m *mattermost) backoff(attempt int) time.Duration {
	d := m.backoffCap
	if shift := attempt - 1; shift < 30 {
		if e := m.backoffStart << shift; e > 0 && e < d {
			d = e
		}
	}
	return m.jitter(d)
}

// slot waits for one of the calls allowed in flight, then for the end of
// any rate-limit pause: in that order, so that a 429 answered while calls
// queue for a slot holds them all.
func (m *mattermost) slot(ctx context.Context) (release func(), err error) {
	release = func() {}
	if m.calls != nil {
		select {
		case m.calls <- struct{}{}:
			release = func() { <-m.calls }
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a free call slot: %w", ctx.Err())
		}
	}
	if err := m.waitRateLimit(ctx); err != nil {
		release()
		return nil, fmt.Errorf("waiting for the rate limit to reset: %w", err)
	}
	return release, nil
}

// waitRateLimit holds a call until the shared rate-limit pause is over.
// Another call's 429 may extend the pause while we wait, hence the loop.
func (m *mattermost) waitRateLimit(ctx context.Context) error {
	for {
		m.mu.Lock()
		wait := time.Until(m.notBefore)
		m.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

// sleepCtx waits d, or less when ctx ends first (returning its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
