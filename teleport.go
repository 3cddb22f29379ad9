package main

// The connection to Teleport: credentials from [teleport], the api client,
// and the checks that make a bad start-up fail with one clear error.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/client/proto"
	"github.com/gravitational/teleport/api/identityfile"
)

// teleportDialTimeout bounds dialing and the first Ping. The client dials
// in the foreground, so an unreachable address fails start-up after this
// long instead of retrying forever in the background.
const teleportDialTimeout = 10 * time.Second

// reachable fails fast, with one plain line, when nothing listens at addr:
// the api client would retry a refused connection until its dial timeout and
// then report five connection methods that failed. Behind an HTTPS proxy the
// address is not dialled directly, so the check is left to the client.
func reachable(ctx context.Context, addr string) error {
	for _, env := range []string{"HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"} {
		if os.Getenv(env) != "" {
			return nil
		}
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, teleportDialTimeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to Teleport at %s: %w (is the address right and Teleport running?)", addr, err)
	}
	return conn.Close()
}

// minTeleportVersion is the oldest Auth Service we talk to: the access
// request and plugin data APIs we rely on are complete from 6.1.0 on.
var minTeleportVersion = teleportVersion{6, 1, 0}

// connectTeleport builds an api/client.Client from [teleport] (identity file
// or key/crt/cas), pings it and refuses servers older than minTeleportVersion.
// With an identity file, addr may be an Auth Service or a Proxy (the client
// tries direct, tunnel and TLS routing connections); the key/crt/cas trio
// carries no SSH certificate and so only reaches an Auth Service directly.
func connectTeleport(ctx context.Context, cfg teleportConfig) (*client.Client, proto.PingResponse, error) {
	creds, err := teleportCredentials(cfg, time.Now())
	if err != nil {
		return nil, proto.PingResponse{}, err
	}
	if err := reachable(ctx, cfg.Addr); err != nil {
		return nil, proto.PingResponse{}, err
	}
	clt, err := client.New(ctx, client.Config{
		Addrs:       []string{cfg.Addr},
		Credentials: []client.Credentials{creds},
		DialTimeout: teleportDialTimeout,
	})
	if err != nil {
		return nil, proto.PingResponse{}, fmt.Errorf("connect to Teleport at %s: %w", cfg.Addr, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, teleportDialTimeout)
	defer cancel()
	pong, err := clt.Ping(pingCtx)
	if err != nil {
		clt.Close()
		return nil, proto.PingResponse{}, fmt.Errorf("connect to Teleport at %s: ping: %w", cfg.Addr, err)
	}
	if err := checkTeleportVersion(pong.ServerVersion); err != nil {
		clt.Close()
		return nil, proto.PingResponse{}, fmt.Errorf("connect to Teleport at %s: %w", cfg.Addr, err)
	}
	return clt, pong, nil
}

// teleportCredentials checks the credential files now, because the api
// client reads them lazily and would report a missing or expired file as
// one of several failed connection attempts.
func teleportCredentials(cfg teleportConfig, now time.Time) (client.Credentials, error) {
	if cfg.Identity != "" {
		expiry, err := identityExpiry(cfg.Identity)
		if err != nil {
			return nil, err
		}
		if !now.Before(expiry) {
			return nil, fmt.Errorf("identity %s expired at %s; renew it with tctl auth sign --user=<plugin user> --out=%s",
				cfg.Identity, expiry.Format(time.RFC3339), cfg.Identity)
		}
		return client.LoadIdentityFile(cfg.Identity), nil
	}
	files := []struct{ key, path string }{
		{"client_key", cfg.ClientKey}, {"client_crt", cfg.ClientCrt}, {"root_cas", cfg.RootCAs},
	}
	for _, f := range files {
		if f.path == "" {
			return nil, fmt.Errorf("teleport %s is not set (set identity, or all of client_key, client_crt and root_cas)", f.key)
		}
		if _, err := os.ReadFile(f.path); err != nil {
			return nil, fmt.Errorf("read teleport %s: %w", f.key, err)
		}
	}
	expiry, err := certificateExpiry(cfg.ClientCrt)
	if err != nil {
		return nil, err
	}
	if !now.Before(expiry) {
		return nil, fmt.Errorf("certificate %s expired at %s; renew it with tctl auth sign --format=tls --user=<plugin user> --out=<prefix>",
			cfg.ClientCrt, expiry.Format(time.RFC3339))
	}
	return client.LoadKeyPair(cfg.ClientCrt, cfg.ClientKey, cfg.RootCAs), nil
}

// identityExpiry reads the identity file at path, checks that it holds a
// usable TLS identity and returns when its certificate expires.
func identityExpiry(path string) (time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read identity file: %w", err)
	}
	id, err := identityfile.FromString(string(data))
	if err != nil {
		// Older identity files keep the SSH certificate next to them in
		// <path>-cert.pub; only ReadFile looks there. Its error would talk
		// about that file, so a malformed file reports the first error.
		var fallbackErr error
		if id, fallbackErr = identityfile.ReadFile(path); fallbackErr != nil {
			return time.Time{}, fmt.Errorf("identity file %s is not a Teleport identity file (tctl auth sign --format=file): %w", path, err)
		}
	}
	if len(id.Certs.TLS) == 0 {
		return time.Time{}, fmt.Errorf("identity file %s has no TLS certificate", path)
	}
	// TLSConfig pairs the key with the certificate and loads the CAs, so
	// a truncated or mismatched file fails here rather than at dial time.
	if _, err := id.TLSConfig(); err != nil {
		return time.Time{}, fmt.Errorf("identity file %s: %w", path, err)
	}
	expiry, ok := id.Expiry()
	if !ok {
		return time.Time{}, fmt.Errorf("identity file %s: unreadable TLS certificate", path)
	}
	return expiry, nil
}

// certificateExpiry returns when the first PEM certificate in path expires.
func certificateExpiry(path string) (time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return time.Time{}, fmt.Errorf("certificate %s: no PEM CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, fmt.Errorf("certificate %s: %w", path, err)
	}
	return cert.NotAfter, nil
}

// teleportVersion is a release number, major.minor.patch.
type teleportVersion [3]int

func (v teleportVersion) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// less compares release numbers field by field.
func (v teleportVersion) less(w teleportVersion) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

// parseTeleportVersion reads "17.0.0", "v16.4.2" or "17.0.0-dev". A
// pre-release or build suffix is ignored: a 6.1.0 development build has the
// 6.1.0 APIs, which is all the version check is about.
func parseTeleportVersion(s string) (teleportVersion, error) {
	v := strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return teleportVersion{}, fmt.Errorf("version %q is not major.minor.patch", s)
	}
	var out teleportVersion
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || strings.Trim(p, "0123456789") != "" {
			return teleportVersion{}, fmt.Errorf("version %q is not major.minor.patch", s)
		}
		out[i] = n
	}
	return out, nil
}

// checkTeleportVersion refuses servers older than minTeleportVersion.
func checkTeleportVersion(server string) error {
	v, err := parseTeleportVersion(server)
	if err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	if v.less(minTeleportVersion) {
		return fmt.Errorf("server runs Teleport %s, too old: teleport-mattermost needs %s or newer", server, minTeleportVersion)
	}
	return nil
}
