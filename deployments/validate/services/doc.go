// Package services is what the deployments may assume about the suite's
// programs, asked of the programs themselves rather than written down a
// second time: which environment variables each one reads, whether it
// accepts the values a deployment gives it, and on which address it serves
// /healthz, /readyz and /metrics.
//
// Load runs a service's own ConfigFromEnv (the code its main runs at
// start) with the deployment's environment and records every variable the
// service looked up. A variable the deployment sets but the service never
// reads is a typo or a leftover ("RETRY_MAX_ATTEMPT", a setting that was
// renamed); a value the service refuses would stop it at start. Both are
// found here, in a test, instead of in a crash-looping pod.
package services
