"""Calls orgtrail's CloudTrail-compatible endpoint with boto3 (and botocore for requests no
client method would send), for the tests in tests/tests/cloudtrail_api.rs.

Reads a job as JSON on standard input:
    {"endpoint": "https://127.0.0.1:PORT", "ca_bundle": "ca.pem", "region": "us-east-1",
     "access_key_id": "...", "secret_access_key": "...",
     "calls": [CALL, ...]}
and writes one JSON result per call, as a JSON list on standard output. A CALL is one of
    {"paginate": {LookupEvents parameters}, "page_size": N}
        boto3's get_paginator("lookup_events"): every page, followed by its NextToken
    {"call": "lookup_events" | any client method, "params": {...}}
        one call
    {"lake": "SQL", "page_size": N}
        CloudTrail Lake's way: start_query, describe_query until it is no longer running (60 s
        at most), then every page of get_query_results
    {"raw": {"target": "...", "content_type": "...", "body": "..."}}
        a request the client methods would refuse to send (malformed body, unknown target),
        built, signed with SigV4 and sent by botocore itself
and may add "signed_minutes_ago": M (botocore signs with a clock M minutes behind), "unsigned":
true (no signature at all),
"access_key_id"/"secret_access_key" (other credentials), "max_attempts" (retries, default 1).

A result is {"events": [...], "pages": N, "request_ids": [...]} or {"error": {"code", "message",
"status", "request_id", "exception"}}, where "exception" is the class botocore raised.
"""

import datetime
import json
import sys
import time
from unittest import mock

import boto3
import botocore
import botocore.auth
import botocore.compat
import botocore.exceptions
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session


def event_json(event):
    """An Event as the test compares it: EventTime as epoch milliseconds."""
    event = dict(event)
    event["EventTime"] = round(event["EventTime"].timestamp() * 1000)
    return event


def error_json(error):
    response = error.response
    return {
        "error": {
            "code": response.get("Error", {}).get("Code"),
            "message": response.get("Error", {}).get("Message"),
            "status": response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            "request_id": response.get("ResponseMetadata", {}).get("RequestId"),
            "exception": type(error).__name__,
        }
    }


def signing_clock(minutes_ago):
    """botocore's clock, moved back: what a client whose clock is behind signs with."""
    real = botocore.compat.get_current_datetime

    def behind(*args, **kwargs):
        return real(*args, **kwargs) - datetime.timedelta(minutes=minutes_ago)

    return mock.patch.object(botocore.auth, "get_current_datetime", behind)


def client_for(job, call):
    return boto3.client(
        "cloudtrail",
        endpoint_url=job["endpoint"],
        region_name=job["region"],
        verify=job["ca_bundle"],
        aws_access_key_id=call.get("access_key_id", job["access_key_id"]),
        aws_secret_access_key=call.get("secret_access_key", job["secret_access_key"]),
        config=Config(
            retries={"max_attempts": call.get("max_attempts", 1), "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            signature_version=botocore.UNSIGNED if call.get("unsigned") else None,
        ),
    )


def paginate(client, call):
    paginator = client.get_paginator("lookup_events")
    events, pages, request_ids = [], 0, []
    for page in paginator.paginate(
        **call["paginate"], PaginationConfig={"PageSize": call.get("page_size", 50)}
    ):
        pages += 1
        request_ids.append(page["ResponseMetadata"].get("RequestId"))
        events.extend(event_json(event) for event in page["Events"])
    return {"events": events, "pages": pages, "request_ids": request_ids}


def one_call(client, call):
    response = getattr(client, call["call"])(**call.get("params", {}))
    result = {"request_ids": [response["ResponseMetadata"].get("RequestId")]}
    if "Events" in response:
        result["events"] = [event_json(event) for event in response["Events"]]
        result["next_token"] = response.get("NextToken")
    return result


def lake(client, call):
    query_id = client.start_query(QueryStatement=call["lake"])["QueryId"]
    deadline = time.monotonic() + 60
    while True:
        described = client.describe_query(QueryId=query_id)
        if described["QueryStatus"] not in ("QUEUED", "RUNNING"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"query {query_id} still {described['QueryStatus']} after 60 s")
        time.sleep(0.1)
    rows, pages, token = [], 0, None
    while described["QueryStatus"] == "FINISHED":
        arguments = {"QueryId": query_id, "MaxQueryResults": call.get("page_size", 1000)}
        if token:
            arguments["NextToken"] = token
        page = client.get_query_results(**arguments)
        pages += 1
        rows.extend(page["QueryResultRows"])
        token = page.get("NextToken")
        if not token:
            break
    statistics = described.get("QueryStatistics", {})
    statistics.pop("CreationTime", None)
    return {
        "query_id": query_id,
        "status": described["QueryStatus"],
        "error": described.get("ErrorMessage"),
        "statistics": statistics,
        "rows": rows,
        "pages": pages,
    }


def raw(job, call):
    request = call["raw"]
    headers = {"X-Amz-Target": request["target"]}
    if request.get("content_type") is not None:
        headers["Content-Type"] = request["content_type"]
    aws_request = AWSRequest(
        method="POST", url=job["endpoint"] + "/", data=request["body"].encode(), headers=headers
    )
    credentials = Credentials(
        call.get("access_key_id", job["access_key_id"]),
        call.get("secret_access_key", job["secret_access_key"]),
    )
    SigV4Auth(credentials, "cloudtrail", job["region"]).add_auth(aws_request)
    session = URLLib3Session(verify=job["ca_bundle"], timeout=60)
    response = session.send(aws_request.prepare())
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        body = {"unparsed": response.content.decode(errors="replace")}
    return {
        "raw": {
            "status": response.status_code,
            "request_id": response.headers.get("x-amzn-RequestId"),
            "content_type": response.headers.get("Content-Type"),
            "body": body,
        }
    }


def run(job, call):
    client = client_for(job, call)
    try:
        if "raw" in call:
            return raw(job, call)
        if "paginate" in call:
            return paginate(client, call)
        if "lake" in call:
            return lake(client, call)
        return one_call(client, call)
    except botocore.exceptions.ClientError as error:
        return error_json(error)


def main():
    job = json.load(sys.stdin)
    results = []
    for call in job["calls"]:
        minutes_ago = call.get("signed_minutes_ago")
        if minutes_ago:
            with signing_clock(minutes_ago):
                results.append(run(job, call))
        else:
            results.append(run(job, call))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
