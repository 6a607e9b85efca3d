-- Indexes for the audit query (GET /api/audit) and the console's event log. Every such query is
-- one account's, in log order, often narrowed to one correlation (everything one command or one
-- lead caused). Without these, a query for an account or a correlation that is rare in a large
-- log walks the whole primary key.
--
-- Each index costs every append a little (measured with `touchline bench log`; see
-- docs/scaling.md). Built inside the migration's transaction: on a log that is already large,
-- build them first by hand with CREATE INDEX CONCURRENTLY under these names, and this migration
-- then only records itself.
create index if not exists events_account_position_idx on touchline.events (account_id, position);
create index if not exists events_correlation_idx on touchline.events (correlation_id);
