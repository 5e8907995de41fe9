package consumer

import (
	"strings"

	"github.com/segmentio/kafka-go"
)

// compact returns msg with its key, value and header values copied into
// one allocation, and its header keys into one string, so that a record
// held for minutes (order-retry holds thousands, waiting for their due
// time) costs its bytes plus three allocations instead of two per header
// plus two. kafka-go decodes every header key and value into allocations
// of their own (and each key twice: bytes, then a string), which made the
// decoded headers of pending records about two thirds of order-retry's
// heap during an outage (issue 18). The original allocations become
// garbage at once.
func compact(msg kafka.Message) kafka.Message {
	n, keys := len(msg.Key)+len(msg.Value), 0
	for _, h := range msg.Headers {
		n += len(h.Value)
		keys += len(h.Key)
	}
	buf := make([]byte, 0, n)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)] // full slice: an append by the handler copies
	}
	msg.Key, msg.Value = take(msg.Key), take(msg.Value)
	if len(msg.Headers) == 0 {
		return msg
	}
	var sb strings.Builder
	sb.Grow(keys)
	for _, h := range msg.Headers {
		sb.WriteString(h.Key)
	}
	all := sb.String()
	headers := make([]kafka.Header, len(msg.Headers))
	at := 0
	for i, h := range msg.Headers {
		headers[i] = kafka.Header{Key: all[at : at+len(h.Key)], Value: take(h.Value)}
		at += len(h.Key)
	}
	msg.Headers = headers
	return msg
}
