package devbroker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// DefaultListen is the address Start listens on when Config.Listen is empty:
// a free port on the loopback interface, what a test wants.
const DefaultListen = "127.0.0.1:0"

// Config describes one embedded broker.
type Config struct {
	// Listen is the host:port to bind; port 0 picks a free port. Empty
	// means DefaultListen.
	Listen string
	// Advertise is the host:port clients are told to connect to (in
	// metadata and coordinator answers): what they can reach, which is not
	// always the bound address (a container, a published port, a host
	// name). A host alone, or port 0, keeps the bound port. Empty means the
	// bound address, with an unspecified host (0.0.0.0, ::) replaced by
	// 127.0.0.1.
	Advertise string
	// Topics to create at start, name -> partition count. Topics that
	// already exist (DataDir) are kept as they are.
	Topics map[string]int
	// AutoCreate lets a client that asks for it (a metadata request with
	// auto-creation on) create a topic by naming it. Off, an unknown topic
	// is an error, as on a cluster managed properly.
	AutoCreate bool
	// DefaultPartitions is the partition count of auto-created topics;
	// 0 means 1, Kafka's own num.partitions default.
	DefaultPartitions int
	// DataDir keeps topics, records and committed offsets across restarts.
	// Empty means memory only.
	DataDir string
	// TLS, when set, makes the broker accept TLS connections only; it must
	// carry the server certificate.
	TLS *tls.Config
	// SASL users; when any is given, clients must authenticate. Mechanism
	// is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (case does not matter).
	SASL []SASLUser
	// Log receives the broker's messages; nil discards them.
	Log *slog.Logger
	// KeepSilentMembers turns off the reaper that removes consumer-group
	// members silent for longer than their session timeout, which kfake
	// itself fails to do for a member that died while joining (see
	// reaper.go). Off (false) is right for every use; true reproduces
	// kfake's behaviour, for the test that shows the defect.
	KeepSilentMembers bool
}

// SASLUser is one user a SASL-enabled broker accepts.
type SASLUser struct {
	Mechanism string
	User      string
	Password  string
}

// SASL mechanism names as kfake and the Kafka protocol spell them.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Broker is a running embedded broker.
type Broker struct {
	cluster   *kfake.Cluster
	reaper    *reaper // nil with KeepSilentMembers
	addr      string
	listen    string
	closeOnce sync.Once
	log       *slog.Logger
}

// Start binds the listener, starts the broker and creates the configured
// topics. ctx bounds start-up only: the broker runs until Close, so that the
// caller decides the shutdown order (clients commit their last offsets
// before the broker goes away).
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("start devbroker: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start devbroker: %w", err)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("start devbroker: listen on %s: %w", listen, err)
	}
	addr, err := advertisedAddr(cfg.Advertise, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start devbroker: %w", err)
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("devbroker"),
		kfake.WithLogger(kfakeLogger{log}),
		// kfake listens by itself on 127.0.0.1 and advertises what its
		// listener's Addr reports. Handing it our listener, wrapped so that
		// Addr reports the advertised address, gives both the bind address
		// and the advertised address we want.
		kfake.ListenFn(oneListener(advertisedListener{Listener: ln, addr: tcpAddr(addr)})),
	}
	partitions := cfg.DefaultPartitions
	if partitions == 0 {
		partitions = 1
	}
	opts = append(opts, kfake.DefaultNumPartitions(partitions))
	if cfg.AutoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if len(cfg.SASL) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range cfg.SASL {
			// Superuser: without ACLs every authenticated user may do
			// everything anyway; this says so.
			opts = append(opts, kfake.Superuser(strings.ToUpper(u.Mechanism), u.User, u.Password))
		}
	}

	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		ln.Close() // kfake closes it only when it got that far; twice is harmless
		return nil, fmt.Errorf("start devbroker: %w", err)
	}
	b := &Broker{cluster: cluster, addr: addr, listen: ln.Addr().String(), log: log}
	if !cfg.KeepSilentMembers {
		if b.reaper, err = startReaper(cluster, b.listen, cfg, log); err != nil {
			b.Close()
			return nil, fmt.Errorf("start devbroker: group member reaper: %w", err)
		}
	}
	if err := b.createTopics(ctx, cfg.Topics); err != nil {
		b.Close()
		return nil, fmt.Errorf("start devbroker: %w", err)
	}
	log.Info("devbroker started (for development and tests; production uses a real Kafka cluster)",
		"listen", b.listen, "advertise", addr, "topics", cfg.Topics,
		"auto_create", cfg.AutoCreate, "data_dir", cfg.DataDir,
		"tls", cfg.TLS != nil, "sasl_users", len(cfg.SASL))
	return b, nil
}

// Addr returns the advertised host:port: what clients use as their
// bootstrap broker.
func (b *Broker) Addr() string { return b.addr }

// ListenAddr returns the bound host:port (with the port chosen when Listen
// asked for port 0).
func (b *Broker) ListenAddr() string { return b.listen }

// Cluster exposes the underlying kfake cluster, for tests that inject faults
// (Cluster.Fault), wait for a consumer group (WaitGroupStable) or read
// partition state.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker: it stops accepting connections, drops the open
// ones and, with a DataDir, saves its state. It is safe to call more than
// once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if b.reaper != nil {
			b.reaper.close() // first: it asks the cluster, which blocks once closed
		}
		b.cluster.Close()
		b.log.Info("devbroker stopped", "advertise", b.addr)
	})
	return nil
}

// createTopics creates the missing topics in name order. A topic that exists
// with another partition count (loaded from DataDir) is kept: changing it
// would lose or reshuffle records, so it only earns a warning.
func (b *Broker) createTopics(ctx context.Context, topics map[string]int) error {
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		want := topics[name]
		if b.cluster.TopicInfo(name) != nil {
			if have := len(b.cluster.PartitionInfos(name)); have != want {
				b.log.Warn("topic exists with another partition count; keeping it",
					"topic", name, "partitions", have, "wanted", want)
			}
			continue
		}
		if err := b.cluster.CreateTopic(name, int32(want), nil); err != nil {
			return fmt.Errorf("create topic %s with %d partitions: %w", name, want, err)
		}
	}
	return nil
}

func (cfg Config) validate() error {
	var errs []error
	if cfg.Listen != "" {
		if _, port, err := net.SplitHostPort(cfg.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen address %q: want host:port, e.g. 127.0.0.1:9092 or :0", cfg.Listen))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("listen address %q: port %q is not a number in 0-65535", cfg.Listen, port))
		}
	}
	if cfg.Advertise != "" {
		if _, _, err := splitAdvertise(cfg.Advertise); err != nil {
			errs = append(errs, err)
		}
	}
	for name, n := range cfg.Topics {
		if err := kafkaclient.CheckTopicName(name); err != nil {
			errs = append(errs, err)
		}
		if n < 1 {
			errs = append(errs, fmt.Errorf("topic %s: %d partitions: want at least 1", name, n))
		}
	}
	if cfg.DefaultPartitions < 0 {
		errs = append(errs, fmt.Errorf("default partitions %d: want 0 (meaning 1) or more", cfg.DefaultPartitions))
	}
	if cfg.TLS != nil && len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil {
		errs = append(errs, errors.New("TLS config has no server certificate"))
	}
	for i, u := range cfg.SASL {
		switch strings.ToUpper(u.Mechanism) {
		case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		default:
			errs = append(errs, fmt.Errorf("SASL user %d (%q): mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", i+1, u.User, u.Mechanism))
		}
		if u.User == "" || u.Password == "" {
			errs = append(errs, fmt.Errorf("SASL user %d: user name and password must both be set", i+1))
		}
	}
	return errors.Join(errs...)
}

// splitAdvertise splits host:port, or a host alone (port ""), and checks
// both parts.
func splitAdvertise(s string) (host, port string, err error) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if bare := strings.Trim(s, "[]"); !strings.Contains(s, ":") || net.ParseIP(bare) != nil {
		host = bare
	} else {
		return "", "", fmt.Errorf("advertised address %q: want host:port or a host alone, e.g. localhost:9092", s)
	}
	if host == "" {
		return "", "", fmt.Errorf("advertised address %q has no host: want host:port, e.g. localhost:9092", s)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return "", "", fmt.Errorf("advertised address %q: port %q is not a number in 0-65535", s, port)
		}
	}
	return host, port, nil
}

// advertisedAddr resolves Config.Advertise against the bound address.
func advertisedAddr(advertise string, bound net.Addr) (string, error) {
	tcp, ok := bound.(*net.TCPAddr)
	if !ok {
		return "", fmt.Errorf("bound address %s is not TCP", bound)
	}
	boundPort := strconv.Itoa(tcp.Port)
	if advertise == "" {
		host := tcp.IP.String()
		if tcp.IP == nil || tcp.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, boundPort), nil
	}
	host, port, err := splitAdvertise(advertise)
	if err != nil {
		return "", err
	}
	if port == "" || port == "0" {
		port = boundPort
	}
	return net.JoinHostPort(host, port), nil
}
