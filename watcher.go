package main

// This file is the daemon's life: start-up, the one Teleport watch loop with
// reconnects and backfill (feeding queue.go), recipients, and reloads on
// SIGHUP.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/types"
)

// tuning is what operators would not tune; tests replace some of it.
type tuning struct {
	reconnectMin, reconnectMax time.Duration              // watch reconnect backoff
	retryMin, retryMax         time.Duration              // per-request retry backoff
	identityCheck              time.Duration              // how often refresh_identity looks at the file
	stopGrace                  time.Duration              // in-flight work allowed after a stop signal
	handled                    func(id string, err error) // observes every handling (tests); may be nil
	reloaded                   func(err error)            // observes every reload (tests); may be nil
}

// requestsPerCall is how many requests are handled at once for each
// Mattermost call allowed in flight: a request spends about half its time
// on Teleport round trips, during which the others keep Mattermost busy.
const requestsPerCall = 4

var defaultTuning = tuning{
	reconnectMin: time.Second, reconnectMax: time.Minute,
	retryMin: time.Second, retryMax: time.Minute,
	identityCheck: time.Minute,
	stopGrace:     15 * time.Second,
}

// daemon is the running plugin. The fields under mu change on reload or
// reconnect; everything else is fixed at start.
type daemon struct {
	log     *slog.Logger
	logs    *logOutput
	path    string
	debug   bool
	timing  tuning
	queue   *queue
	notify  *notifier
	restart chan struct{} // asks the watch loop to reconnect (new identity)

	mu        sync.Mutex
	cfg       *Config
	tp        teleport
	retired   teleport // the previous client, closed at the next swap
	identity  string   // identity file content the client was built from
	cluster   string
	proxyAddr string
	mm        *mattermost
	botID     string
	botName   string
	channels  map[string]string // recipient.dedupeKey() -> channel id
}

// start runs the daemon until ctx is done. reload receives one value per SIGHUP.
func start(ctx context.Context, configPath string, debug bool, reload <-chan struct{}) error {
	return startWith(ctx, configPath, debug, reload, defaultTuning)
}

func startWith(ctx context.Context, configPath string, debug bool, reload <-chan struct{}, t tuning) error {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	logs, err := openLogOutput(cfg.Log, debug)
	if err != nil {
		return err
	}
	defer logs.Close()
	d := &daemon{
		log: logs.logger, logs: logs, path: configPath, debug: debug, timing: t,
		restart: make(chan struct{}, 1),
	}
	for _, w := range secretFileWarnings(cfg) {
		d.log.Warn(w)
	}
	if err := d.connect(ctx, cfg); err != nil {
		return err
	}
	defer d.closeTeleport()
	if err := d.useMattermost(ctx, cfg); err != nil {
		return err
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.resolveStatic(ctx)

	d.notify = &notifier{
		log:     d.log,
		tp:      d.teleport,
		mm:      d.mattermost,
		view:    d.view,
		targets: d.targets,
		forget:  d.forgetChannel,
	}
	// Work outlives ctx by stopGrace so in-flight posts can finish.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	handle := d.notify.handle
	if t.handled != nil {
		handle = func(ctx context.Context, id string, ev event) error {
			err := d.notify.handle(ctx, id, ev)
			t.handled(id, err)
			return err
		}
	}
	d.queue = newQueue(work, requestsPerCall*cfg.Mattermost.Concurrency, handle, d.log, t.retryMin, t.retryMax)

	d.log.Info("teleport-mattermost started", "cluster", d.cluster, "teleport", cfg.Teleport.Addr,
		"mattermost", cfg.Mattermost.URL, "bot", d.botName)
	var loops sync.WaitGroup
	loops.Add(2)
	go func() { defer loops.Done(); d.watch(ctx) }()
	go func() { defer loops.Done(); d.housekeep(ctx, reload) }()
	<-ctx.Done()
	loops.Wait()

	d.log.Info("stopping; finishing in-flight work", "grace", t.stopGrace)
	if !d.queue.stop(t.stopGrace) {
		cancelWork()
		d.queue.stop(5 * time.Second)
		d.log.Warn("stopped with work in flight; it is picked up again at the next start")
	}
	d.log.Info("teleport-mattermost stopped")
	return nil
}

func (d *daemon) teleport() teleport {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tp
}

func (d *daemon) mattermost() *mattermost {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mm
}

func (d *daemon) config() *Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// connect builds a Teleport client from cfg and swaps it in; the previous one
// stays open until the next swap so calls in flight on it can finish.
func (d *daemon) connect(ctx context.Context, cfg *Config) error {
	identity := readIdentity(cfg.Teleport)
	clt, ping, err := connectTeleport(ctx, cfg.Teleport)
	if err != nil {
		return err
	}
	d.mu.Lock()
	old := d.retired
	d.retired, d.tp = d.tp, clt
	d.identity = identity
	d.cluster = ping.ClusterName
	d.proxyAddr = ping.ProxyPublicAddr
	d.mu.Unlock()
	if old != nil {
		old.Close()
	}
	d.log.Info("connected to Teleport", "addr", cfg.Teleport.Addr, "cluster", ping.ClusterName, "version", ping.ServerVersion)
	return nil
}

func (d *daemon) closeTeleport() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range []teleport{d.tp, d.retired} {
		if c != nil {
			c.Close()
		}
	}
}

// readIdentity is the identity file's content ("" for the key/crt/cas trio
// or an unreadable file), to notice when it was rotated.
func readIdentity(cfg teleportConfig) string {
	if cfg.Identity == "" || !cfg.RefreshIdentity {
		return ""
	}
	b, err := os.ReadFile(cfg.Identity)
	if err != nil {
		return ""
	}
	return string(b)
}

// useMattermost checks cfg's URL and token with /users/me and swaps the
// client in.
func (d *daemon) useMattermost(ctx context.Context, cfg *Config) error {
	mm, err := newMattermost(cfg.Mattermost, d.log)
	if err != nil {
		return err
	}
	me, err := mm.me(ctx)
	if isUnauthorized(err) {
		return fmt.Errorf("mattermost at %s rejected the bot token (check mattermost.token or token_file; create one under Integrations > Bot Accounts): %w", cfg.Mattermost.URL, err)
	}
	if err != nil {
		return fmt.Errorf("mattermost at %s: %w", cfg.Mattermost.URL, err)
	}
	d.mu.Lock()
	old := d.mm
	d.mm, d.botID, d.botName = mm, me.ID, me.Username
	d.channels = make(map[string]string)
	d.mu.Unlock()
	if old != nil {
		// Calls in flight on the old client finish; its idle
		// connections are not needed any more.
		old.http.CloseIdleConnections()
	}
	return nil
}

// resolveStatic looks up every configured recipient once, so mistakes show in
// the log at start and the first request does not pay for the lookups.
func (d *daemon) resolveStatic(ctx context.Context) {
	d.mu.Lock()
	mm, bot := d.mm, mmUser{ID: d.botID, Username: d.botName}
	d.mu.Unlock()
	for _, r := range staticRecipients(d.config()) {
		id, err := d.channel(ctx, r)
		if err == nil {
			err = botMayPost(ctx, mm, r, id, bot)
		}
		if err != nil {
			d.log.Warn("recipient unusable; requests will not be posted there", "recipient", r.String(), "error", err)
		}
	}
}

// staticRecipients are the configured recipients, each once, roles in
// sorted order ("*" first) so that logs and reports read the same each run.
func staticRecipients(cfg *Config) []recipient {
	all := append([]recipient(nil), cfg.Mattermost.Recipients...)
	for _, role := range slices.Sorted(maps.Keys(cfg.RoleToRecipients)) {
		all = append(all, cfg.RoleToRecipients[role]...)
	}
	return dedupeRecipients(all)
}

// botMayPost checks that the bot is a member of a channel recipient: it can
// look up an open channel it is not in, but posting there fails.
func botMayPost(ctx context.Context, mm *mattermost, r recipient, channelID string, bot mmUser) error {
	if r.Email != "" {
		return nil // a direct channel always has the bot in it
	}
	in, err := mm.isChannelMember(ctx, channelID, bot.ID)
	if err != nil {
		return fmt.Errorf("recipient %s: check the bot's membership: %w", r, err)
	}
	if !in {
		return fmt.Errorf("recipient %s: the bot is not a member of the channel, so posts there fail; invite it: /invite @%s", r, bot.Username)
	}
	return nil
}

// channel resolves r to a channel id, from the cache when it can.
func (d *daemon) channel(ctx context.Context, r recipient) (string, error) {
	key := r.dedupeKey()
	d.mu.Lock()
	id, ok := d.channels[key]
	mm, bot := d.mm, d.botID
	d.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := mm.resolveRecipient(ctx, r, bot)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	if d.mm == mm { // not replaced by a reload meanwhile
		d.channels[key] = id
	}
	d.mu.Unlock()
	return id, nil
}

func (d *daemon) forgetChannel(channelID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, id := range d.channels {
		if id == channelID {
			delete(d.channels, k)
		}
	}
}

// targets resolves the recipients of req: the configured ones for its roles
// and the suggested reviewers that are email addresses, each channel once.
// A recipient that does not exist is logged and skipped; a transient failure
// is an error so the request is retried.
func (d *daemon) targets(ctx context.Context, req types.AccessRequest) (requestTargets, error) {
	rs := d.config().recipientsFor(req.GetRoles())
	for _, s := range req.GetSuggestedReviewers() {
		if r, err := parseRecipient(s); err == nil && r.Email != "" {
			rs = append(rs, r)
		}
	}
	var t requestTargets
	seen := make(map[string]bool)
	for _, r := range dedupeRecipients(rs) {
		id, err := d.channel(ctx, r)
		if isNotFound(err) || isForbidden(err) {
			t.failed++
			d.log.Warn("skipping recipient", "request", req.GetName(), "recipient", r.String(), "error", err)
			continue
		}
		if err != nil {
			return t, fmt.Errorf("recipient %s: %w", r, err)
		}
		if !seen[id] {
			seen[id] = true
			t.channels = append(t.channels, id)
		}
	}
	return t, nil
}

// view is what the posts show for req in state.
func (d *daemon) view(req types.AccessRequest, state string) requestView {
	d.mu.Lock()
	cluster, proxy := d.cluster, d.proxyAddr
	d.mu.Unlock()
	v := requestView{
		ID:            req.GetName(),
		Cluster:       cluster,
		User:          req.GetUser(),
		Roles:         req.GetRoles(),
		Resources:     resourceNames(req),
		Reason:        req.GetRequestReason(),
		State:         state,
		ResolveReason: req.GetResolveReason(),
		Reviews:       len(req.GetReviews()),
	}
	if proxy != "" {
		v.Link = "https://" + webHost(proxy) + "/web/requests/" + req.GetName()
	}
	return v
}

// webHost drops the default HTTPS port from the proxy's public address.
func webHost(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && port == "443" {
		return host
	}
	return addr
}

// watch keeps one watcher on access requests open until ctx is done,
// reconnecting with backoff; each (re)connect is followed by a backfill.
func (d *daemon) watch(ctx context.Context) {
	delay := d.timing.reconnectMin
	for ctx.Err() == nil {
		live, err := d.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRestart) {
			continue // the new client is in place already
		}
		if live {
			delay = d.timing.reconnectMin
		}
		wait := jitter(delay)
		d.log.Warn("teleport watch ended; reconnecting", "error", err, "in", wait.Round(time.Millisecond))
		if sleepCtx(ctx, wait) != nil {
			return
		}
		delay = min(2*delay, d.timing.reconnectMax)
		cfg := d.config()
		if err := d.connect(ctx, cfg); err != nil {
			d.log.Warn("reconnect to Teleport failed", "error", err)
		}
	}
}

// errRestart ends a watcher so the next one uses a new client.
var errRestart = errors.New("reconnecting with a new identity")

// watchOnce runs one watcher; live reports whether it got as far as OpInit.
func (d *daemon) watchOnce(ctx context.Context) (live bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := d.teleport().NewWatcher(ctx, types.Watch{
		Name:  "teleport-mattermost",
		Kinds: []types.WatchKind{{Kind: types.KindAccessRequest}},
	})
	if err != nil {
		return false, fmt.Errorf("open watcher: %w", err)
	}
	defer w.Close()
	var backfill sync.WaitGroup
	defer backfill.Wait()
	for {
		select {
		case <-ctx.Done():
			return live, ctx.Err()
		case <-d.restart:
			return live, errRestart
		case <-w.Done():
			return live, fmt.Errorf("watcher closed: %w", w.Error())
		case ev := <-w.Events():
			switch ev.Type {
			case types.OpInit:
				live = true
				d.log.Info("watching access requests")
				backfill.Add(1)
				go func() { defer backfill.Done(); d.backfill(ctx) }()
			case types.OpPut:
				req, ok := ev.Resource.(types.AccessRequest)
				if !ok {
					d.log.Warn("unexpected resource in access request event", "type", fmt.Sprintf("%T", ev.Resource))
					continue
				}
				d.queue.put(req.GetName(), event{req: req, live: true})
			case types.OpDelete:
				d.queue.put(ev.Resource.GetName(), event{deleted: true, live: true})
			}
		}
	}
}

// backfill queues every existing request, so what was filed, reviewed or
// resolved while we were not watching is caught up. Handling is idempotent,
// so requests that are already up to date cost one plugin-data read.
func (d *daemon) backfill(ctx context.Context) {
	reqs, err := d.teleport().GetAccessRequests(ctx, types.AccessRequestFilter{})
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("backfill: list access requests failed; relying on new events", "error", err)
		}
		return
	}
	d.notify.recallAll(ctx, d.teleport(), reqs)
	for _, req := range reqs {
		d.queue.put(req.GetName(), event{req: req})
	}
	d.log.Debug("backfill queued", "requests", len(reqs))
}

// housekeep handles SIGHUP and the periodic identity check.
func (d *daemon) housekeep(ctx context.Context, reload <-chan struct{}) {
	tick := time.NewTicker(d.timing.identityCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			err := d.reload(ctx)
			if err != nil {
				d.log.Error("reload failed; keeping the running config", "error", err)
			}
			if d.timing.reloaded != nil {
				d.timing.reloaded(err)
			}
		case <-tick.C:
			d.checkIdentity(ctx)
		}
	}
}

// checkIdentity rebuilds the Teleport client when refresh_identity is on and
// the identity file changed (e.g. tbot or a cron job renewed it).
func (d *daemon) checkIdentity(ctx context.Context) {
	cfg := d.config()
	now := readIdentity(cfg.Teleport)
	d.mu.Lock()
	changed := now != "" && now != d.identity
	d.mu.Unlock()
	if !changed {
		return
	}
	d.log.Info("identity file changed; reconnecting", "path", cfg.Teleport.Identity)
	if err := d.connect(ctx, cfg); err != nil {
		d.log.Error("identity file changed but cannot be used; keeping the current connection", "error", err)
		return
	}
	d.requestRestart()
}

func (d *daemon) requestRestart() {
	select {
	case d.restart <- struct{}{}:
	default:
	}
}

// reload re-reads the config file (and the identity and token files). A bad
// new config is an error and the running one is kept.
func (d *daemon) reload(ctx context.Context) error {
	d.log.Info("SIGHUP: reloading", "config", d.path)
	cfg, err := loadConfig(d.path)
	if err != nil {
		return err
	}
	old := d.config()
	if err := d.useMattermost(ctx, cfg); err != nil {
		return err
	}
	if cfg.Teleport != old.Teleport || readIdentity(cfg.Teleport) != "" {
		if err := d.connect(ctx, cfg); err != nil {
			d.log.Error("reload: cannot connect with the new [teleport] settings; keeping the running connection", "error", err)
			cfg.Teleport = old.Teleport
		} else {
			d.requestRestart()
		}
	}
	if cfg.Mattermost.Concurrency != old.Mattermost.Concurrency {
		d.log.Warn("mattermost.concurrency changes on restart only", "running", old.Mattermost.Concurrency)
	}
	if err := d.logs.reconfigure(cfg.Log, d.debug); err != nil {
		d.log.Error("reload: log output", "error", err)
	}
	for _, w := range secretFileWarnings(cfg) {
		d.log.Warn(w)
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.resolveStatic(ctx)
	d.log.Info("reloaded", "config", d.path)
	return nil
}

// jitter spreads retries of many clients: a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

var _ teleport = (*client.Client)(nil)
