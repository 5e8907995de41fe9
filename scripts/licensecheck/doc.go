// Package licensecheck holds a test only: the repository carries its
// license (LICENSE, Apache-2.0) and every module of go.work names it in its
// README, so that whoever imports or forks one module knows its terms.
package licensecheck
