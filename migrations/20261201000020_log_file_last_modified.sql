-- When each log file was created in S3 (its LastModified, as the collector listed it): the time
-- from it to committed_at is the file's freshness (orgtrail sources list, and the Prometheus
-- histogram orgtrail_ingest_freshness_seconds). NULL for local files and older rows.
ALTER TABLE log_files ADD COLUMN object_last_modified timestamptz;
