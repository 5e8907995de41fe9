package kafkaretry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
)

// A team wires its own handler: two stages (the input topic and the retry
// topic) share one handler and one router. Here the handler charges
// payments: "ok" succeeds, "flaky" fails once with a transient error and
// succeeds on its retry, "bad" fails for good, and "junk" cannot be read.
// The broker is the embedded one (a *kafka.Writer and *kafka.Reader on a
// real cluster work the same).
func ExampleStage() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	broker, err := devbroker.Start(ctx, devbroker.Config{Topics: map[string]int{"payments": 1, "payments-retry": 1, "payments-dlq": 1}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()
	writer := &kafka.Writer{Addr: kafka.TCP(broker.Addr()), BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer writer.Close()

	var (
		mu    sync.Mutex
		seen  = map[string]int{}
		trail []string
	)
	handler := func(ctx context.Context, msg kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(msg.Key)]++
		switch string(msg.Key) {
		case "flaky":
			if seen["flaky"] == 1 {
				return errors.New("payment provider timed out") // unclassified: transient
			}
		case "bad":
			return failure.NewPermanent("card-refused", errors.New("card refused"))
		case "junk":
			return kafkaretry.Poison(errors.New("not a payment"))
		}
		return nil
	}
	router := &handoff.Router{
		Writer:      writer,
		Topics:      handoff.Topics{Retry: "payments-retry", DeadLetter: "payments-dlq"},
		Policy:      backoff.Policy{Base: 10 * time.Millisecond, Max: time.Second},
		MaxAttempts: 3,
	}
	done := make(chan struct{}, 8)
	onDecision := func(msg kafka.Message, d handoff.Decision) {
		mu.Lock()
		trail = append(trail, strings.TrimSpace(fmt.Sprintf("%s from %s: %s %s", msg.Key, msg.Topic, d.Route, d.Reason)))
		mu.Unlock()
		done <- struct{}{}
	}
	stages := []*kafkaretry.Stage{
		{Reader: newReader(broker.Addr(), "payments"), Handler: handler, Router: router, OnDecision: onDecision},
		{Reader: newReader(broker.Addr(), "payments-retry"), Handler: handler, Router: router, OnDecision: onDecision, Retries: true},
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, s := range stages {
		wg.Go(func() {
			if err := s.Run(runCtx); err != nil {
				fmt.Println(err)
			}
		})
	}

	for _, key := range []string{"ok", "flaky", "bad", "junk"} {
		if err := writer.WriteMessages(ctx, kafka.Message{Topic: "payments", Key: []byte(key), Value: []byte("{}")}); err != nil {
			fmt.Println(err)
			return
		}
	}
	for range 5 { // four records, one of them retried once
		select {
		case <-done:
		case <-ctx.Done():
			fmt.Println("timed out")
		}
	}
	stop()
	wg.Wait()
	slices.Sort(trail)
	for _, line := range trail {
		fmt.Println(line)
	}
	fmt.Println("dead letters:", deadLetters(ctx, broker.Addr(), 2))
	// Output:
	// bad from payments: dead-letter permanent-error
	// flaky from payments-retry: done
	// flaky from payments: retry
	// junk from payments: dead-letter poison
	// ok from payments: done
	// dead letters: [bad:permanent-error junk:poison]
}

// newReader is a consumer-group member tuned to join and fetch fast.
func newReader(addr, topic string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: topic + "-group", Topic: topic,
		MaxWait: 50 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		JoinGroupBackoff: 50 * time.Millisecond, StartOffset: kafka.FirstOffset,
	})
}

// deadLetters reads n records of the dead-letter topic: key and x-dlq-reason.
func deadLetters(ctx context.Context, addr string, n int) []string {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "payments-dlq", MaxWait: 50 * time.Millisecond})
	defer r.Close()
	var out []string
	for range n {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			return append(out, err.Error())
		}
		reason, _ := retrymeta.Get(msg.Headers, retrymeta.HeaderDLQReason)
		out = append(out, fmt.Sprintf("%s:%s", msg.Key, reason))
	}
	slices.Sort(out)
	return out
}
