module github.com/reeferdlq/reefer-dlq/deployments/loadgen

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/segmentio/kafka-go v0.4.51
)

require (
	github.com/caarlos0/env/v11 v11.4.2 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/reeferdlq/reefer-dlq/pkg/kafkaretry v0.0.0 // indirect
	github.com/reeferdlq/reefer-dlq/pkg/platform v0.0.0
	github.com/reeferdlq/reefer-dlq/pkg/reefer v0.0.0
	github.com/twmb/franz-go v1.22.3 // indirect
	github.com/twmb/franz-go/pkg/kfake v0.0.0-20260918054303-01f206a7e32c // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
	github.com/xdg-go/pbkdf2 v1.0.0 // indirect
	github.com/xdg-go/scram v1.1.2 // indirect
	github.com/xdg-go/stringprep v1.0.4 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace github.com/reeferdlq/reefer-dlq/pkg/kafkaretry => ../../pkg/kafkaretry

replace github.com/reeferdlq/reefer-dlq/pkg/platform => ../../pkg/platform

replace github.com/reeferdlq/reefer-dlq/pkg/reefer => ../../pkg/reefer

replace github.com/reeferdlq/reefer-dlq/pkg/testkit => ../../pkg/testkit
