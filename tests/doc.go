// Package tests holds the end-to-end tests of the odometer binary: they
// build cmd/odometer once, run it as a child process on a real SQLite file
// and a free port, and talk to it over HTTP the way clients do. Killing
// the process with SIGKILL in the middle of ingest checks the durability
// and exactly-once promises of the store as a whole, not one layer of it.
package tests
