package devbroker

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// reaperInterval is how often the reaper looks for silent members: the
// slack it adds to a member's session timeout.
const reaperInterval = time.Second

// reaper works around a defect of kfake (as pinned in go.mod, and the
// newest version on the Go module proxy): a classic consumer-group member
// that dies between its JoinGroup and the answer is never expired.
//
// kfake arms a member's session timer only when an answer to it is
// delivered (group.reply in pkg/kfake/groups.go calls updateHeartbeat only
// after a successful send). The answer to a dead member's JoinGroup cannot
// be delivered, so the member has no timer; once the group leader's
// SyncGroup makes the group Stable (which also stops the pending-sync
// timer that would have removed it), the dead member keeps its partitions
// for good and nobody reads them. Kafka expires such a member after its
// session timeout, like any other silent member.
//
// The reaper restores Kafka's rule from the outside. It watches the group
// requests that carry a member id (JoinGroup, SyncGroup, Heartbeat,
// OffsetCommit, LeaveGroup) through kfake's control hooks, without
// altering them, and every reaperInterval removes, with a LeaveGroup on its
// behalf, each member of a Stable classic group that has sent nothing for
// longer than the group's session timeout (the largest one its JoinGroup
// requests asked for). Only Stable groups are swept: in the other states
// kfake's own rebalance and pending-sync timers bound the wait, and a live
// member legitimately sends nothing while its JoinGroup waits. A live
// member is never removed earlier than Kafka would remove it.
type reaper struct {
	cluster *kfake.Cluster
	client  *kafka.Client
	log     *slog.Logger
	now     func() time.Time

	mu     sync.Mutex
	groups map[string]*groupSeen

	stop chan struct{}
	done chan struct{}
}

// groupSeen is what the reaper knows of one classic group.
type groupSeen struct {
	sessionTimeout time.Duration        // largest asked for by a JoinGroup
	lastSeen       map[string]time.Time // member id -> last request
}

// startReaper hooks the reaper into cluster and starts its sweep loop. The
// client it removes members with reaches the broker at listen with the
// broker's own security settings.
func startReaper(cluster *kfake.Cluster, listen string, cfg Config, log *slog.Logger) (*reaper, error) {
	client, err := selfClient(listen, cfg)
	if err != nil {
		return nil, err
	}
	r := &reaper{
		cluster: cluster,
		client:  client,
		log:     log,
		now:     time.Now,
		groups:  make(map[string]*groupSeen),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, key := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.LeaveGroup} {
		cluster.ControlKey(int16(key), r.observe)
	}
	go r.loop()
	return r, nil
}

// selfClient returns a client that always dials the bound address (the
// advertised one may only resolve elsewhere, say on a container network).
// With TLS it skips verification: it talks to this very process over
// loopback. With SASL it logs in as the first configured user.
func selfClient(listen string, cfg Config) (*kafka.Client, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, port)
	kc := kafkaclient.Config{
		Brokers: []string{addr},
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: kafkaclient.DialTimeout}).DialContext(ctx, network, addr)
		},
	}
	if len(cfg.SASL) > 0 {
		u := cfg.SASL[0]
		kc.SASL = kafkaclient.SASLConfig{Mechanism: strings.ToLower(u.Mechanism), Username: u.User, Password: u.Password}
	}
	t, err := kc.Transport()
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		t.TLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // loopback to ourselves
	}
	return &kafka.Client{Addr: kafka.TCP(addr), Transport: t, Timeout: 5 * time.Second}, nil
}

// observe notes the member a group request comes from. It never handles
// the request: kfake processes it as usual.
func (r *reaper) observe(req kmsg.Request) (kmsg.Response, error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch q := req.(type) {
	case *kmsg.JoinGroupRequest:
		g := r.group(q.Group)
		g.sessionTimeout = max(g.sessionTimeout, time.Duration(q.SessionTimeoutMillis)*time.Millisecond)
		r.touch(g, q.MemberID)
	case *kmsg.SyncGroupRequest:
		r.touchKnown(q.Group, q.MemberID)
	case *kmsg.HeartbeatRequest:
		r.touchKnown(q.Group, q.MemberID)
	case *kmsg.OffsetCommitRequest:
		r.touchKnown(q.Group, q.MemberID)
	case *kmsg.LeaveGroupRequest:
		if g := r.groups[q.Group]; g != nil {
			delete(g.lastSeen, q.MemberID)
			for _, m := range q.Members {
				delete(g.lastSeen, m.MemberID)
			}
		}
	}
	return nil, nil, false
}

func (r *reaper) group(name string) *groupSeen {
	g := r.groups[name]
	if g == nil {
		g = &groupSeen{lastSeen: make(map[string]time.Time)}
		r.groups[name] = g
	}
	return g
}

// touchKnown notes a request of a group that joined through this broker
// (a standalone offset commit, say of the dlq tool, creates nothing).
func (r *reaper) touchKnown(group, member string) {
	if g := r.groups[group]; g != nil {
		r.touch(g, member)
	}
}

func (r *reaper) touch(g *groupSeen, member string) {
	if member != "" {
		g.lastSeen[member] = r.now()
	}
}

func (r *reaper) loop() {
	defer close(r.done)
	t := time.NewTicker(reaperInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.sweep()
		}
	}
}

// close stops the sweeps; call it before closing the cluster (kfake's
// GroupInfo blocks on a closed cluster).
func (r *reaper) close() {
	close(r.stop)
	<-r.done
}

// silent is a member the reaper is about to remove.
type silent struct {
	group, member string
	silentFor     time.Duration
	timeout       time.Duration
}

// sweep removes the silent members of every Stable group.
func (r *reaper) sweep() {
	r.mu.Lock()
	names := make([]string, 0, len(r.groups))
	for name := range r.groups {
		names = append(names, name)
	}
	r.mu.Unlock()

	for _, name := range names {
		info := r.cluster.GroupInfo(name) // outside r.mu: it waits for kfake's loop, which may be in observe
		for _, s := range r.silentMembers(name, info) {
			r.remove(s)
		}
	}
}

// silentMembers returns the members of group that have been silent for
// longer than its session timeout, and forgets members that are gone. A
// member seen for the first time counts as heard from now.
func (r *reaper) silentMembers(name string, info *kfake.GroupInfo) []silent {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[name]
	if info == nil {
		delete(r.groups, name)
		return nil
	}
	now := r.now()
	present := make(map[string]bool, len(info.Members))
	var out []silent
	for _, m := range info.Members {
		present[m.MemberID] = true
		last, ok := g.lastSeen[m.MemberID]
		if !ok {
			g.lastSeen[m.MemberID] = now
			continue
		}
		if info.State == "Stable" && g.sessionTimeout > 0 && now.Sub(last) > g.sessionTimeout {
			out = append(out, silent{group: name, member: m.MemberID, silentFor: now.Sub(last), timeout: g.sessionTimeout})
		}
	}
	for id := range g.lastSeen {
		if !present[id] {
			delete(g.lastSeen, id)
		}
	}
	return out
}

// remove sends a LeaveGroup on behalf of a silent member.
func (r *reaper) remove(s silent) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := r.client.LeaveGroup(ctx, &kafka.LeaveGroupRequest{
		GroupID: s.group,
		Members: []kafka.LeaveGroupRequestMember{{ID: s.member}},
	})
	if err == nil {
		err = resp.Error
		for _, m := range resp.Members {
			if err == nil {
				err = m.Error
			}
		}
	}
	if err != nil {
		r.log.Warn("devbroker: could not remove a silent group member; its partitions stay unread until it is removed",
			"group", s.group, "member", s.member, "silent_for", s.silentFor.Round(time.Millisecond), "error", err)
		return
	}
	r.log.Warn("devbroker: removed a group member silent for longer than its session timeout (kfake never expires a member that died while joining; see package devbroker)",
		"group", s.group, "member", s.member, "silent_for", s.silentFor.Round(time.Millisecond), "session_timeout", s.timeout)
}
