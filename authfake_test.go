package main

// A fake Teleport Auth Service: a real gRPC AuthService over mutual TLS, so
// tests exercise the real api/client (dialing, TLS, error conversion,
// watcher streams) against state the test controls.

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/client/proto"
	"github.com/gravitational/teleport/api/identityfile"
	"github.com/gravitational/teleport/api/trail"
	"github.com/gravitational/teleport/api/types"
	apiutils "github.com/gravitational/teleport/api/utils"
	"github.com/gravitational/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	fakeAuthCluster    = "example.com"
	fakeAuthProxyAddr  = "teleport.example.com:443"
	fakeAuthPluginName = "mattermost"
	// fakeAuthServerName is the name the api client puts in SNI and checks
	// against the server certificate when it dials an address directly
	// (constants.APIDomain); every real Teleport server certificate has it.
	fakeAuthServerName = "teleport.cluster.local"
	fakeAuthWaitLimit  = 10 * time.Second
)

// fakeAuth is the test's handle on the fake Auth Service: its CA (to issue
// identities), its listener, and the access requests and plugin data it
// serves. All state is guarded by mu; every change closes changed, so tests
// wait on conditions instead of sleeping.
type fakeAuth struct {
	t         testing.TB
	caKey     *ecdsa.PrivateKey
	caCert    *x509.Certificate
	caPEM     []byte
	sshCAKey  *ecdsa.PrivateKey
	serverTLS *tls.Config
	address   string

	mu        sync.Mutex
	srv       *grpc.Server  // nil while stopped
	serveDone chan struct{} // closed when srv.Serve returns
	version   string
	seq       int // creation order of requests, also their list key
	requests  map[string]*fakeAuthRequest
	watches   map[*fakeAuthWatch]struct{}
	users     []string // peer certificate CommonName of each RPC
	methods   []string // method name of each RPC
	faults    map[string]fakeAuthFault
	changed   chan struct{}
}

// fakeAuthRequest is a stored access request and its plugin data, which
// lives exactly as long as the request (as in Teleport).
type fakeAuthRequest struct {
	seq  int
	req  *types.AccessRequestV3
	data *types.PluginDataV3 // nil until the first UpdatePluginData
}

// fakeAuthWatch is one open WatchEvents stream. Events are queued under
// fakeAuth.mu at the moment of the mutation, so every stream sees them in
// the same order; the stream's handler goroutine does the sending.
type fakeAuthWatch struct {
	queue   []*proto.Event
	wake    chan struct{} // capacity 1: "the queue may be non-empty"
	dropped chan struct{} // closed by dropWatchers
}

// fakeAuthFault makes the next n calls of one method fail with code.
type fakeAuthFault struct {
	n    int
	code codes.Code
}

// newFakeAuth starts a fake Auth Service on 127.0.0.1:0 for cluster
// "example.com", version "17.0.0", proxy public address
// "teleport.example.com:443"; it stops on t.Cleanup.
func newFakeAuth(t testing.TB) *fakeAuth {
	t.Helper()
	f := &fakeAuth{
		t:        t,
		version:  "17.0.0",
		requests: map[string]*fakeAuthRequest{},
		watches:  map[*fakeAuthWatch]struct{}{},
		faults:   map[string]fakeAuthFault{},
		changed:  make(chan struct{}),
	}
	f.caKey = newFakeAuthKey(t)
	f.sshCAKey = newFakeAuthKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          fakeAuthSerial(t),
		Subject:               pkix.Name{CommonName: fakeAuthCluster, Organization: []string{fakeAuthCluster}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &f.caKey.PublicKey, f.caKey)
	if err != nil {
		t.Fatalf("fake auth: CA certificate: %v", err)
	}
	if f.caCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatalf("fake auth: CA certificate: %v", err)
	}
	f.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})

	serverKey := newFakeAuthKey(t)
	serverDER := f.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: fakeAuthServerName},
		DNSNames:    []string{fakeAuthServerName, "*." + fakeAuthServerName},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &serverKey.PublicKey)
	pool := x509.NewCertPool()
	pool.AddCert(f.caCert)
	f.serverTLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake auth: listen: %v", err)
	}
	f.address = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(f.stop)
	return f
}

// addr is host:port of the fake, for [teleport] addr.
func (f *fakeAuth) addr() string { return f.address }

// serve starts a gRPC server on ln. Its goroutine ends when stop is called.
func (f *fakeAuth) serve(ln net.Listener) {
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(f.serverTLS)),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := f.admit(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := f.admit(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
		// The api client sends keepalives even without streams; the
		// default policy would answer them with GOAWAY too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	)
	proto.RegisterAuthServiceServer(srv, &fakeAuthService{f: f})
	done := make(chan struct{})
	f.mu.Lock()
	f.srv, f.serveDone = srv, done
	f.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns when stopped; errors after that are expected
	}()
}

// stop closes the listener and every connection; open streams end with an
// error on the client side. State (requests, plugin data) is kept.
func (f *fakeAuth) stop() {
	f.mu.Lock()
	srv, done := f.srv, f.serveDone
	f.srv, f.serveDone = nil, nil
	f.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Stop()
	<-done
}

// start listens again on the same address after stop.
func (f *fakeAuth) start(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", f.address)
	if err != nil {
		t.Fatalf("fake auth: listen again on %s: %v", f.address, err)
	}
	f.serve(ln)
}

// restart is an Auth Service restart: connections drop, the address stays.
func (f *fakeAuth) restart(t testing.TB) {
	t.Helper()
	f.stop()
	f.start(t)
}

// admit records who called what, then applies an injected fault, if any.
func (f *fakeAuth) admit(ctx context.Context, fullMethod string) error {
	method := path.Base(fullMethod)
	user := ""
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
			user = info.State.PeerCertificates[0].Subject.CommonName
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users = append(f.users, user)
	f.methods = append(f.methods, method)
	defer f.notifyLocked()
	if fault := f.faults[method]; fault.n > 0 {
		fault.n--
		f.faults[method] = fault
		return status.Errorf(fault.code, "fake auth: injected failure of %s", method)
	}
	return nil
}

// notifyLocked wakes every waitFor. Callers hold mu.
func (f *fakeAuth) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor blocks until cond is true, re-checking after every change of the
// fake's state (RPC, mutation, watcher opened or closed); fails after 10s.
// cond runs without the fake's lock held, so it may call the fake's getters.
func (f *fakeAuth) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitChanged(t, "fake auth: "+what, fakeAuthWaitLimit, func() <-chan struct{} {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.changed
	}, cond)
}

// waitWatchers waits until exactly n watch streams are open.
func (f *fakeAuth) waitWatchers(t testing.TB, n int) {
	t.Helper()
	f.waitFor(t, fmt.Sprintf("%d open watchers", n), func() bool { return f.watchers() == n })
}

// setVersion changes the ServerVersion that Ping reports.
func (f *fakeAuth) setVersion(v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version = v
}

// clientUsers is the certificate CommonName of each RPC, in order.
func (f *fakeAuth) clientUsers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.users)
}

// rpcs is the method name ("Ping", "WatchEvents", ...) of each RPC, in order.
func (f *fakeAuth) rpcs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.methods)
}

// failNext makes the next n calls of method (e.g. "UpdatePluginData")
// fail with codes.Unavailable, which the client sees as a connection problem.
func (f *fakeAuth) failNext(method string, n int) { f.failNextCode(method, n, codes.Unavailable) }

// failNextCode makes the next n calls of method fail with code.
func (f *fakeAuth) failNextCode(method string, n int, code codes.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[method] = fakeAuthFault{n: n, code: code}
}

// watchers is the number of open watch streams that receive events.
func (f *fakeAuth) watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watches)
}

// dropWatchers ends every open WatchEvents stream with codes.Unavailable.
func (f *fakeAuth) dropWatchers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watches {
		close(w.dropped)
		delete(f.watches, w)
	}
	f.notifyLocked()
}

// createRequest files a PENDING access request and emits OpPut.
func (f *fakeAuth) createRequest(user string, roles []string, reason string, suggested ...string) types.AccessRequest {
	now := time.Now().UTC()
	req := &types.AccessRequestV3{
		Metadata: types.Metadata{Name: newFakeRequestID(), Expires: ptrTo(now.Add(time.Hour))},
		Spec: types.AccessRequestSpecV3{
			User:               user,
			Roles:              slices.Clone(roles),
			State:              types.RequestState_PENDING,
			Created:            now,
			Expires:            now.Add(time.Hour),
			RequestReason:      reason,
			SuggestedReviewers: slices.Clone(suggested),
		},
	}
	if err := req.CheckAndSetDefaults(); err != nil {
		f.t.Errorf("fake auth: createRequest: %v", err)
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	f.requests[req.GetName()] = &fakeAuthRequest{seq: f.seq, req: req}
	f.emitPutLocked(req)
	return req.Copy()
}

// addReview appends a review (APPROVED or DENIED proposal) and emits OpPut;
// the state does not change (use resolve for that).
func (f *fakeAuth) addReview(id, author string, approve bool, reason string) {
	proposed := types.RequestState_DENIED
	if approve {
		proposed = types.RequestState_APPROVED
	}
	f.mutate("addReview", id, func(r *types.AccessRequestV3) {
		r.Spec.Reviews = append(r.Spec.Reviews, types.AccessReview{
			Author:        author,
			Roles:         []string{"reviewer"},
			ProposedState: proposed,
			Reason:        reason,
			Created:       time.Now().UTC(),
		})
	})
}

// resolve sets the state and resolve reason and emits OpPut.
func (f *fakeAuth) resolve(id string, state types.RequestState, reason string) {
	f.mutate("resolve", id, func(r *types.AccessRequestV3) {
		r.Spec.State = state
		r.Spec.ResolveReason = reason
	})
}

func (f *fakeAuth) mutate(what, id string, change func(*types.AccessRequestV3)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, ok := f.requests[id]
	if !ok {
		f.t.Errorf("fake auth: %s: no access request %q", what, id)
		return
	}
	change(stored.req)
	f.emitPutLocked(stored.req)
}

// deleteRequest removes a request and its plugin data and emits OpDelete
// with a bare resource header, which is what Teleport sends on expiry.
func (f *fakeAuth) deleteRequest(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.requests[id]; !ok {
		f.t.Errorf("fake auth: deleteRequest: no access request %q", id)
		return
	}
	delete(f.requests, id)
	f.emitLocked(types.OpDelete, func() types.Resource {
		return &types.ResourceHeader{Kind: types.KindAccessRequest, Version: types.V3, Metadata: types.Metadata{Name: id}}
	})
}

// request is a copy of the stored request, or nil.
func (f *fakeAuth) request(id string) types.AccessRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if stored, ok := f.requests[id]; ok {
		return stored.req.Copy()
	}
	return nil
}

// pluginData is a copy of the "mattermost" plugin data of a request; nil
// when there is none.
func (f *fakeAuth) pluginData(id string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, ok := f.requests[id]
	if !ok || stored.data == nil {
		return nil
	}
	entry := stored.data.Entries()[fakeAuthPluginName]
	if entry == nil {
		return nil
	}
	out := make(map[string]string, len(entry.Data))
	for k, v := range entry.Data {
		out[k] = v
	}
	return out
}

// setPluginData replaces the "mattermost" plugin data of a request without
// compare-and-swap (tests seeding state left by an earlier run).
func (f *fakeAuth) setPluginData(id string, data map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, ok := f.requests[id]
	if !ok {
		f.t.Errorf("fake auth: setPluginData: no access request %q", id)
		return
	}
	pd := &types.PluginDataV3{SubKind: types.KindAccessRequest, Metadata: types.Metadata{Name: id}}
	if err := pd.CheckAndSetDefaults(); err != nil {
		f.t.Errorf("fake auth: setPluginData: %v", err)
		return
	}
	pd.Spec.Entries = map[string]*types.PluginDataEntry{}
	if len(data) > 0 {
		entry := &types.PluginDataEntry{Data: map[string]string{}}
		for k, v := range data {
			entry.Data[k] = v
		}
		pd.Spec.Entries[fakeAuthPluginName] = entry
	}
	stored.data = pd
	f.notifyLocked()
}

func (f *fakeAuth) emitPutLocked(req *types.AccessRequestV3) {
	f.emitLocked(types.OpPut, func() types.Resource { return req.Copy() })
}

// emitLocked queues an event on every open stream. Each stream gets its own
// copy of the resource, because marshalling happens later, concurrently,
// outside the lock.
func (f *fakeAuth) emitLocked(op types.OpType, resource func() types.Resource) {
	for w := range f.watches {
		ev, err := client.EventToGRPC(types.Event{Type: op, Resource: resource()})
		if err != nil {
			f.t.Errorf("fake auth: event: %v", err)
			return
		}
		w.queue = append(w.queue, ev)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	f.notifyLocked()
}

// fakeAuthService is the gRPC face of fakeAuth. It is a separate type so
// that RPC names (Ping, ...) do not mix with the test helpers. Errors are
// trace errors converted by trail, as in Teleport, so the client maps them
// back (CompareFailed <-> FailedPrecondition, NotFound, ...).
type fakeAuthService struct {
	proto.UnimplementedAuthServiceServer
	f *fakeAuth
}

func (s *fakeAuthService) Ping(ctx context.Context, _ *proto.PingRequest) (*proto.PingResponse, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	remote := ""
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr.String()
	}
	return &proto.PingResponse{
		ClusterName:     fakeAuthCluster,
		ServerVersion:   s.f.version,
		ServerFeatures:  &proto.Features{},
		ProxyPublicAddr: fakeAuthProxyAddr,
		RemoteAddr:      remote,
	}, nil
}

func (s *fakeAuthService) WatchEvents(watch *proto.Watch, stream proto.AuthService_WatchEventsServer) error {
	f := s.f
	if len(watch.Kinds) == 0 {
		return trail.ToGRPC(trace.BadParameter("missing parameter Kinds"))
	}
	for _, k := range watch.Kinds {
		if k.Kind != types.KindAccessRequest {
			return trail.ToGRPC(trace.BadParameter("fake auth watches only %q, not %q", types.KindAccessRequest, k.Kind))
		}
	}
	w := &fakeAuthWatch{wake: make(chan struct{}, 1), dropped: make(chan struct{})}
	f.mu.Lock()
	f.watches[w] = struct{}{}
	f.notifyLocked()
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watches, w)
		f.notifyLocked()
		f.mu.Unlock()
	}()

	initEvent, err := client.EventToGRPC(types.Event{Type: types.OpInit, Resource: &types.WatchStatusV1{
		Kind:     types.KindWatchStatus,
		Version:  types.V1,
		Metadata: types.Metadata{Name: "watch_status"},
		Spec:     types.WatchStatusSpecV1{Kinds: watch.Kinds},
	}})
	if err != nil {
		return trail.ToGRPC(err)
	}
	if err := stream.Send(initEvent); err != nil {
		return err
	}
	for {
		f.mu.Lock()
		batch := w.queue
		w.queue = nil
		f.mu.Unlock()
		for _, ev := range batch {
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
		select {
		case <-w.wake:
		case <-w.dropped:
			return status.Error(codes.Unavailable, "fake auth: watcher dropped")
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// matching is the requests the filter selects, in creation order, copied.
func (f *fakeAuth) matching(filter *types.AccessRequestFilter) []*types.AccessRequestV3 {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored := make([]*fakeAuthRequest, 0, len(f.requests))
	for _, r := range f.requests {
		if filter == nil || filter.Match(r.req) {
			stored = append(stored, r)
		}
	}
	slices.SortFunc(stored, func(a, b *fakeAuthRequest) int { return a.seq - b.seq })
	out := make([]*types.AccessRequestV3, len(stored))
	for i, r := range stored {
		out[i] = apiutils.CloneProtoMsg(r.req)
	}
	return out
}

func (s *fakeAuthService) GetAccessRequestsV2(filter *types.AccessRequestFilter, stream proto.AuthService_GetAccessRequestsV2Server) error {
	for _, r := range s.f.matching(filter) {
		if err := stream.Send(r); err != nil {
			return err
		}
	}
	return nil
}

// ListAccessRequests pages by request id: NextKey is the id of the first
// request of the next page in the requested order.
func (s *fakeAuthService) ListAccessRequests(_ context.Context, req *proto.ListAccessRequestsRequest) (*proto.ListAccessRequestsResponse, error) {
	all := s.f.matching(req.Filter)
	switch req.Sort {
	case proto.AccessRequestSort_DEFAULT, proto.AccessRequestSort_CREATED:
	case proto.AccessRequestSort_STATE:
		slices.SortStableFunc(all, func(a, b *types.AccessRequestV3) int {
			return cmp.Compare(a.GetState().String(), b.GetState().String())
		})
	default:
		return nil, trail.ToGRPC(trace.BadParameter("unsupported sort %v", req.Sort))
	}
	if req.Descending {
		slices.Reverse(all)
	}
	if req.StartKey != "" {
		i := slices.IndexFunc(all, func(r *types.AccessRequestV3) bool { return r.GetName() == req.StartKey })
		if i < 0 {
			return nil, trail.ToGRPC(trace.BadParameter("unknown start key %q", req.StartKey))
		}
		all = all[i:]
	}
	resp := &proto.ListAccessRequestsResponse{AccessRequests: all}
	if req.Limit > 0 && len(all) > int(req.Limit) {
		resp.AccessRequests = all[:req.Limit]
		resp.NextKey = all[req.Limit].GetName()
	}
	return resp, nil
}

func (s *fakeAuthService) GetPluginData(_ context.Context, filter *types.PluginDataFilter) (*proto.PluginDataSeq, error) {
	if filter.Kind != types.KindAccessRequest {
		return nil, trail.ToGRPC(trace.BadParameter("unsupported resource kind %q", filter.Kind))
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	stored := make([]*fakeAuthRequest, 0, len(f.requests))
	for _, r := range f.requests {
		if r.data != nil && filter.Match(r.data) {
			stored = append(stored, r)
		}
	}
	slices.SortFunc(stored, func(a, b *fakeAuthRequest) int { return a.seq - b.seq })
	seq := &proto.PluginDataSeq{}
	for _, r := range stored {
		seq.PluginData = append(seq.PluginData, apiutils.CloneProtoMsg(r.data))
	}
	// No match is not an error: Teleport answers an empty list.
	return seq, nil
}

// UpdatePluginData applies Set under the Expect conditions with the same
// code Teleport uses (PluginDataV3.Update): every expected key must hold the
// expected value, "" meaning absent, or the update fails as CompareFailed;
// a Set value of "" deletes the key.
func (s *fakeAuthService) UpdatePluginData(_ context.Context, params *types.PluginDataUpdateParams) (*emptypb.Empty, error) {
	if params.Kind != types.KindAccessRequest {
		return nil, trail.ToGRPC(trace.BadParameter("unsupported resource kind %q", params.Kind))
	}
	if params.Plugin == "" {
		return nil, trail.ToGRPC(trace.BadParameter("missing plugin name"))
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, ok := f.requests[params.Resource]
	if !ok {
		return nil, trail.ToGRPC(trace.NotFound("access_request %q not found", params.Resource))
	}
	var data *types.PluginDataV3
	if stored.data != nil {
		data = apiutils.CloneProtoMsg(stored.data)
	} else {
		fresh, err := types.NewPluginData(params.Resource, types.KindAccessRequest)
		if err != nil {
			return nil, trail.ToGRPC(err)
		}
		data = fresh.(*types.PluginDataV3)
	}
	if err := data.Update(*params); err != nil {
		return nil, trail.ToGRPC(err)
	}
	stored.data = data
	f.notifyLocked()
	return &emptypb.Empty{}, nil
}

// writeIdentity writes an identity file (tctl auth sign --format=file) for
// user, valid from a minute ago for 12 hours, with a fresh key each call.
func (f *fakeAuth) writeIdentity(t testing.TB, path, user string) {
	t.Helper()
	now := time.Now()
	f.writeIdentityValid(t, path, user, now.Add(-time.Minute), now.Add(12*time.Hour))
}

// writeIdentityValid is writeIdentity with explicit validity (expired
// identities, refresh tests).
func (f *fakeAuth) writeIdentityValid(t testing.TB, path, user string, notBefore, notAfter time.Time) {
	t.Helper()
	key := newFakeAuthKey(t)
	keyPEM, certPEM := f.clientCert(t, key, user, notBefore, notAfter)
	id := &identityfile.IdentityFile{
		PrivateKey: keyPEM,
		Certs: identityfile.Certs{
			SSH: fakeAuthSSHUserCert(t, f.sshCAKey, &key.PublicKey, user, notBefore, notAfter),
			TLS: certPEM,
		},
		CACerts: identityfile.CACerts{
			SSH: [][]byte{[]byte("@cert-authority *." + fakeAuthCluster + " " +
				fakeAuthSSHKeyLine(&f.sshCAKey.PublicKey) + " type=host\n")},
			TLS: [][]byte{f.caPEM},
		},
	}
	if err := identityfile.Write(id, path); err != nil {
		t.Fatalf("fake auth: write identity %s: %v", path, err)
	}
}

// writeKeyPair writes the key/crt/cas trio (tctl auth sign --format=tls).
func (f *fakeAuth) writeKeyPair(t testing.TB, keyPath, crtPath, casPath, user string) {
	t.Helper()
	now := time.Now()
	keyPEM, certPEM := f.clientCert(t, newFakeAuthKey(t), user, now.Add(-time.Minute), now.Add(12*time.Hour))
	for _, file := range []struct {
		path string
		data []byte
	}{{keyPath, keyPEM}, {crtPath, certPEM}, {casPath, f.caPEM}} {
		if err := os.WriteFile(file.path, file.data, 0o600); err != nil {
			t.Fatalf("fake auth: write %s: %v", file.path, err)
		}
	}
}

// clientCert issues a user TLS certificate; the user is the CommonName (as
// in Teleport, which also encodes roles and traits the fake ignores).
func (f *fakeAuth) clientCert(t testing.TB, key *ecdsa.PrivateKey, user string, notBefore, notAfter time.Time) (keyPEM, certPEM []byte) {
	t.Helper()
	der := f.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: []string{"access-plugin"}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &key.PublicKey)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("fake auth: marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// issue signs tmpl for pub with the fake's CA and returns the DER.
func (f *fakeAuth) issue(t testing.TB, tmpl *x509.Certificate, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	tmpl.SerialNumber = fakeAuthSerial(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.caCert, pub, f.caKey)
	if err != nil {
		t.Fatalf("fake auth: issue certificate: %v", err)
	}
	return der
}

// ECDSA P-256 keeps key generation fast; Teleport accepts it too.
func newFakeAuthKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("fake auth: generate key: %v", err)
	}
	return key
}

func fakeAuthSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("fake auth: serial: %v", err)
	}
	return n
}

// newFakeRequestID is a random (version 4) UUID, the form of Teleport's
// access request ids.
func newFakeRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func ptrTo[T any](v T) *T { return &v }

// The identity file must carry an SSH user certificate (the api client
// refuses the file without one). It is encoded here in the OpenSSH
// certificate wire format (PROTOCOL.certkeys) with the standard library
// only, keeping golang.org/x/crypto out of this module's requirements.

// sshWire appends SSH wire-format fields (RFC 4251 section 5).
type sshWire []byte

func (w sshWire) str(b []byte) sshWire {
	w = binary.BigEndian.AppendUint32(w, uint32(len(b)))
	return append(w, b...)
}

func (w sshWire) u32(v uint32) sshWire { return binary.BigEndian.AppendUint32(w, v) }

func (w sshWire) u64(v uint64) sshWire { return binary.BigEndian.AppendUint64(w, v) }

func (w sshWire) mpint(n *big.Int) sshWire {
	b := n.Bytes()
	if len(b) > 0 && b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return w.str(b)
}

// fakeAuthSSHPublicKey is the wire form of an ecdsa-sha2-nistp256 key.
func fakeAuthSSHPublicKey(pub *ecdsa.PublicKey) []byte {
	point, err := pub.ECDH()
	if err != nil {
		panic(err) // a P-256 key always converts
	}
	return sshWire(nil).str([]byte("ecdsa-sha2-nistp256")).str([]byte("nistp256")).str(point.Bytes())
}

// fakeAuthSSHKeyLine is a key in authorized_keys/known_hosts form.
func fakeAuthSSHKeyLine(pub *ecdsa.PublicKey) string {
	return "ecdsa-sha2-nistp256 " + base64.StdEncoding.EncodeToString(fakeAuthSSHPublicKey(pub))
}

// fakeAuthSSHUserCert is an OpenSSH user certificate for pub with principal
// user, signed by caKey, as one authorized_keys line.
func fakeAuthSSHUserCert(t testing.TB, caKey *ecdsa.PrivateKey, pub *ecdsa.PublicKey, user string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	const certType = "ecdsa-sha2-nistp256-cert-v01@openssh.com"
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	point, err := pub.ECDH()
	if err != nil {
		t.Fatalf("fake auth: ssh key: %v", err)
	}
	body := sshWire(nil).str([]byte(certType)).str(nonce).
		str([]byte("nistp256")).str(point.Bytes()).
		u64(fakeAuthSerial(t).Uint64()).
		u32(1). // user certificate
		str([]byte(user)).
		str(sshWire(nil).str([]byte(user))). // valid principals
		u64(uint64(notBefore.Unix())).u64(uint64(notAfter.Unix())).
		str(nil). // critical options
		str(nil). // extensions
		str(nil). // reserved
		str(fakeAuthSSHPublicKey(&caKey.PublicKey))
	digest := sha256.Sum256(body)
	r, s, err := ecdsa.Sign(rand.Reader, caKey, digest[:])
	if err != nil {
		t.Fatalf("fake auth: sign ssh certificate: %v", err)
	}
	sig := sshWire(nil).str([]byte("ecdsa-sha2-nistp256")).str(sshWire(nil).mpint(r).mpint(s))
	cert := body.str(sig)
	return []byte(certType + " " + base64.StdEncoding.EncodeToString(cert) + " " + user + "\n")
}
