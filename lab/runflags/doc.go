// Package runflags holds the flags of `hostlab run` that make a scenario's
// variant — the client, its socket options, sysctls and the fault's own
// options — and the checks of duration flags, so that the run command, the
// verdicts bench and campaign files parse a variant exactly the same way.
package runflags
