"""The SQL cookbook's queries answered by DuckDB, compared with orgtrail's answers.

DuckDB reads the same archive objects orgtrail reads (only their `event_id`, `account_id` and
`event_category` columns and the original `record` text) plus the events not archived yet (every
expected event whose id no object holds), and computes CloudTrail Lake's columns from the
records itself, with its own JSON functions; `ip_country` is MaxMind's own reader over the
same GeoIP database. Then it runs each cookbook query's text unchanged.

    python sql_cookbook_duckdb.py ARCHIVE_DIR EXPECTED_JSONL ORGTRAIL_ANSWERS_JSON GEOIP_MMDB

ORGTRAIL_ANSWERS_JSON: {"queries": [{"id", "sql", "rows": [orgtrail's JSON rows]}]}. Prints
{"results": [{"id", "rows", "matches", "only_duckdb", "only_orgtrail", "error"}]}.
"""

import collections
import datetime
import ipaddress
import json
import re
import sys

import duckdb
import maxminddb

archive_dir, expected_path, answers_path, geoip_path = sys.argv[1:5]

con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")

geoip = maxminddb.open_database(geoip_path)


def ip_country(address):
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    record = geoip.get(ip)
    if not record:
        return None
    country = record.get("country") or {}
    return country.get("iso_code") or record.get("country_code")


con.create_function("ip_country", ip_country, ["VARCHAR"], "VARCHAR", null_handling="special")

# Presto's json_extract_scalar: a string, number or boolean as text; null for anything else.
con.execute(
    """CREATE MACRO json_extract_scalar(j, p) AS
       CASE WHEN json_type(json_extract(j, p)) IN ('OBJECT', 'ARRAY', 'NULL') THEN NULL
            ELSE json_extract_string(j, p) END"""
)

archived = f"read_parquet('{archive_dir}/**/*.parquet', hive_partitioning = false)"
expected = (
    f"read_json('{expected_path}', format = 'newline_delimited', columns = "
    "{'event_id': 'VARCHAR', 'account_id': 'VARCHAR', 'event_category': 'VARCHAR', "
    "'record': 'VARCHAR'})"
)
con.execute(
    f"""CREATE TABLE base AS
        SELECT event_id, account_id, event_category, record FROM {archived}
        UNION ALL
        SELECT event_id, account_id, event_category, record FROM {expected}
        WHERE event_id NOT IN (SELECT event_id FROM {archived})"""
)


def text(path):
    return f"json_extract_string(record, '{path}')"


def json_text(path):
    return f"CAST(json_extract(record, '{path}') AS VARCHAR)"


con.execute(
    f"""CREATE VIEW events AS SELECT
        {text('$.eventVersion')} AS eventversion,
        struct_pack(
            type := {text('$.userIdentity.type')},
            principalid := {text('$.userIdentity.principalId')},
            arn := {text('$.userIdentity.arn')},
            accountid := {text('$.userIdentity.accountId')},
            accesskeyid := {text('$.userIdentity.accessKeyId')},
            username := {text('$.userIdentity.userName')},
            invokedby := {text('$.userIdentity.invokedBy')},
            sessioncontext := {json_text('$.userIdentity.sessionContext')}
        ) AS useridentity,
        CAST(replace(replace({text('$.eventTime')}, 'T', ' '), 'Z', '') AS TIMESTAMP) AS eventtime,
        coalesce({text('$.eventSource')}, {text('$.insightDetails.eventSource')}) AS eventsource,
        coalesce({text('$.eventName')}, {text('$.insightDetails.eventName')}) AS eventname,
        {text('$.awsRegion')} AS awsregion,
        {text('$.sourceIPAddress')} AS sourceipaddress,
        {text('$.userAgent')} AS useragent,
        {text('$.errorCode')} AS errorcode,
        {text('$.errorMessage')} AS errormessage,
        {json_text('$.requestParameters')} AS requestparameters,
        {json_text('$.responseElements')} AS responseelements,
        {json_text('$.additionalEventData')} AS additionaleventdata,
        {text('$.requestID')} AS requestid,
        {text('$.eventID')} AS eventid,
        {text('$.eventType')} AS eventtype,
        {text('$.apiVersion')} AS apiversion,
        account_id AS recipientaccountid,
        {text('$.sharedEventID')} AS sharedeventid,
        {text('$.vpcEndpointId')} AS vpcendpointid,
        event_category AS eventcategory,
        record AS eventjson
      FROM base"""
)
# The same table under the event data store's name, for Lake's queries.
con.execute("CREATE VIEW orgtrail AS SELECT * FROM events")

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?$")


def normal(value):
    """One value as both sides can write it: times as ISO text to the microsecond."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    if isinstance(value, str) and TIMESTAMP.match(value):
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "").replace(" ", "T"))
        return parsed.isoformat(timespec="microseconds")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


answers = json.load(open(answers_path))
results = []
for query in answers["queries"]:
    result = {"id": query["id"]}
    try:
        cursor = con.execute(query["sql"])
        columns = [description[0].lower() for description in cursor.description]
        duck = [tuple(normal(value) for value in row) for row in cursor.fetchall()]
    except Exception as error:  # the query's text must run in DuckDB as written
        result["error"] = f"{type(error).__name__}: {error}"
        results.append(result)
        continue
    ours = []
    for row in query["rows"]:
        lowered = {key.lower(): value for key, value in row.items()}
        unknown = set(lowered) - set(columns)
        if unknown:
            result["error"] = f"orgtrail's columns {sorted(unknown)} are not DuckDB's {columns}"
        ours.append(tuple(normal(lowered.get(column)) for column in columns))
    duck_counts = collections.Counter(map(repr, duck))
    our_counts = collections.Counter(map(repr, ours))
    result["rows"] = len(duck)
    result["columns"] = columns
    result["matches"] = duck_counts == our_counts
    result["only_duckdb"] = sorted((duck_counts - our_counts).elements())[:5]
    result["only_orgtrail"] = sorted((our_counts - duck_counts).elements())[:5]
    if "eventid" in columns:
        index = columns.index("eventid")
        result["distinct_event_ids"] = len({row[index] for row in duck})
    results.append(result)

print(json.dumps({"results": results}))
