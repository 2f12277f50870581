-- Distribute a migrated Quando database over a Citus cluster (run on the coordinator, once,
-- after `quando migrate`, before the first request). See README.md, "Scale-out with Citus".
--
-- Shared, small, looked up by key or id on every request: copies on every node.
SELECT create_reference_table('organizations');
SELECT create_reference_table('api_keys');
-- Tenant tables: sharded by organization, colocated, so one organization's rows (and every
-- foreign key and the exclusion constraint between them) live on one shard.
SELECT create_distributed_table('calendars', 'org_id');
SELECT create_distributed_table('event_types', 'org_id', colocate_with => 'calendars');
SELECT create_distributed_table('events', 'org_id', colocate_with => 'calendars');
SELECT create_distributed_table('calendar_members', 'org_id', colocate_with => 'calendars');
SELECT create_distributed_table('event_series', 'org_id', colocate_with => 'calendars');
SELECT create_distributed_table('idempotency_keys', 'org_id', colocate_with => 'calendars');
-- Webhooks and feeds: the outbox is written in the same transaction as the event it describes,
-- so it lives on the event's shard.
SELECT create_distributed_table('webhook_endpoints', 'org_id', colocate_with => 'calendars');
SELECT create_distributed_table('webhook_messages', 'org_id', colocate_with => 'calendars');
SELECT create_distributed_table('webhook_deliveries', 'org_id', colocate_with => 'calendars');
SELECT create_distributed_table('calendar_feeds', 'org_id', colocate_with => 'calendars');
-- List totals: one counter per (organization, calendar, status), kept by a row trigger on
-- `events` that writes the same organization's colocated counter row. Citus runs triggers on
-- distributed tables only with this setting (the trigger touches one shard: the event's own).
SET citus.enable_unsafe_triggers TO on;
SELECT create_distributed_table('event_counts', 'org_id', colocate_with => 'calendars');
-- Organization-wide totals: stripes per (organization, connection, status), same triggers.
SELECT create_distributed_table('event_org_counts', 'org_id', colocate_with => 'calendars');
-- Slot holds: checked under the calendar's row lock, so they live on its shard.
SELECT create_distributed_table('holds', 'org_id', colocate_with => 'calendars');
-- service_probe (the readiness probe's one row) and seaql_migrations (the migration log) stay
-- local tables on the coordinator.
