-- The principals (userIdentity.arn) of each archive object's events, sorted and distinct, as
-- the archiver wrote them: SQL opens only the objects that hold a principal a query names
-- (docs/sql.md). NULL: not recorded (objects archived before this column, or with more
-- principals than the archiver records), so the object may hold any principal.
ALTER TABLE archive_objects ADD COLUMN principals text[];
