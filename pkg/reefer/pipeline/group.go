package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// GroupTiming is the consumer-group timing of a stage's reader. Together
// they decide how long a killed member stops the input (see the README's
// "How long a kill stops the input"):
//
//   - the group notices a silent member after SessionTimeout;
//   - the surviving members learn of the rebalance at their next heartbeat,
//     HeartbeatInterval;
//   - the group waits up to RebalanceTimeout for every member to rejoin,
//     and a member that does not is left out.
//
// So a kill stops the dead member's partitions for at most SessionTimeout
// + HeartbeatInterval + RebalanceTimeout (21 s with the defaults; about
// SessionTimeout + HeartbeatInterval when the survivors rejoin at once),
// plus a second on the devbroker for a member killed while it was joining
// (see package devbroker). A single replica restarted after a kill waits in
// its JoinGroup until the dead member is expired or the rebalance timeout
// ends, whichever is first.
type GroupTiming struct {
	SessionTimeout    time.Duration `env:"CONSUMER_SESSION_TIMEOUT" envDefault:"10s"`
	HeartbeatInterval time.Duration `env:"CONSUMER_HEARTBEAT_INTERVAL" envDefault:"1s"`
	RebalanceTimeout  time.Duration `env:"CONSUMER_REBALANCE_TIMEOUT" envDefault:"10s"`
}

// Validate names every bad group setting. The session bounds are Kafka's
// broker defaults (group.min.session.timeout.ms and
// group.max.session.timeout.ms); the heartbeat must fit at least three
// times into the session, as Kafka recommends, so that one lost heartbeat
// does not expire a live member.
func (g GroupTiming) Validate() error {
	var errs []error
	if g.SessionTimeout < 6*time.Second || g.SessionTimeout > 30*time.Minute {
		errs = append(errs, fmt.Errorf("CONSUMER_SESSION_TIMEOUT=%s: want a duration from 6s to 30m (the broker's group session bounds), such as 10s", g.SessionTimeout))
	}
	if g.HeartbeatInterval <= 0 || 3*g.HeartbeatInterval > g.SessionTimeout {
		errs = append(errs, fmt.Errorf("CONSUMER_HEARTBEAT_INTERVAL=%s: want a positive duration at most a third of CONSUMER_SESSION_TIMEOUT (%s), such as 1s", g.HeartbeatInterval, g.SessionTimeout))
	}
	if g.RebalanceTimeout < time.Second || g.RebalanceTimeout > 30*time.Minute {
		errs = append(errs, fmt.Errorf("CONSUMER_REBALANCE_TIMEOUT=%s: want a duration from 1s to 30m, such as 10s", g.RebalanceTimeout))
	}
	return errors.Join(errs...)
}

// ReaderConfig returns the kafka-go reader settings of a member of group
// reading topic with this timing; kafkaclient.Config.NewReader adds the
// brokers and the rest.
func (g GroupTiming) ReaderConfig(group, topic string) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		GroupID:           group,
		Topic:             topic,
		SessionTimeout:    g.SessionTimeout,
		HeartbeatInterval: g.HeartbeatInterval,
		RebalanceTimeout:  g.RebalanceTimeout,
		// kafka-go waits 5 s after a failed JoinGroup; after a kill the
		// first joins often fail while the group settles.
		JoinGroupBackoff: time.Second,
	}
}

// Bytes is a size in bytes, read from the environment as a whole number of
// bytes or with a binary unit: 16777216, 16MiB, 512KiB, 1GiB.
type Bytes int64

// AcceptedForm describes the values Bytes reads, for envconfig's errors.
func (Bytes) AcceptedForm() string {
	return "a whole number of bytes, optionally with KiB, MiB or GiB, such as 16MiB"
}

// UnmarshalText reads a size (envconfig calls it).
func (b *Bytes) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q: want %s", text, b.AcceptedForm())
	}
	*b = Bytes(n * mult)
	return nil
}

// String prints the size with the largest exact binary unit.
func (b Bytes) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(b) >= u.mult && int64(b)%u.mult == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.mult, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", int64(b))
}
