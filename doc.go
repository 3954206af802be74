// Package odometer is the domain of the Odometer usage-metering service.
//
// Usage events arrive per customer (Event); they are stored once, ever, by
// their id (EventStore). The Aggregator folds them into mergeable partial
// states (State) kept in 15-minute buckets, and from those into calendar
// periods (Period) in the configured time zone (Aggregation). When a period
// ends it is finalized, and a notification is recorded in the same
// transaction, so that the webhook outbox can deliver it exactly as the
// template did, or as a correction when late events change it.
//
// This package holds the types, the pure logic on them and the interfaces
// that the adapters implement. It imports the standard library only:
// storage lives in sqlite/ (and postgres/), HTTP in http/, and the wiring in
// cmd/odometer.
package odometer
