// Package scenario runs hostlab's fault scenarios: it starts the echo pair in
// a lab, does something real to the server host at a recorded instant,
// watches the client until it learns of it (or a bound passes), heals the
// lab, and writes the evidence — timeline, logs, TCP_INFO ladder, pcap,
// consoles — and a verdict that sets what was observed against what the
// kernel's rules predict (package model).
//
// Each scenario is one file opening with the property it checks; the
// catalogue (Catalogue) is a plain table.
package scenario
