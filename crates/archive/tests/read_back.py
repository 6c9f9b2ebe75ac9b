"""Reads an orgtrail archive directory (`<dir>/account=…/region=…/day=…/HH-NNNN.parquet`) with
readers orgtrail did not write: pyarrow, file by file, and DuckDB over the whole directory with
Hive partitioning. Prints one JSON document on stdout for tests/python_read_back.rs to compare
with the events it wrote:

    {"pyarrow": {"files": [...], "rows": [...]}, "duckdb": {"types": {...}, "rows": [...]}}

Usage: read_back.py <events directory>
"""

import json
import pathlib
import sys

import duckdb
import pyarrow
import pyarrow.parquet as parquet


def read_with_pyarrow(directory):
    files = []
    rows = []
    for path in sorted(directory.rglob("*.parquet")):
        metadata = parquet.ParquetFile(path).metadata
        compressions = set()
        for row_group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                compressions.add(metadata.row_group(row_group).column(column).compression)
        key_value = {
            key.decode(): value.decode() for key, value in (metadata.metadata or {}).items()
        }
        table = parquet.read_table(path)
        files.append(
            {
                "path": path.relative_to(directory).as_posix(),
                "rows": table.num_rows,
                "compressions": sorted(compressions),
                "metadata": key_value,
                "types": {field.name: str(field.type) for field in table.schema},
            }
        )
        event_times = table.column("event_time").cast(pyarrow.int64()).to_pylist()
        for index, row in enumerate(table.select(["event_id", "record", "resource_arns"]).to_pylist()):
            rows.append(
                {
                    "event_id": row["event_id"],
                    "event_time_us": event_times[index],
                    "record": row["record"],
                    "resource_arns": row["resource_arns"],
                }
            )
    return {"files": files, "rows": rows}


def read_with_duckdb(directory):
    pattern = (directory / "*" / "*" / "*" / "*.parquet").as_posix().replace("'", "''")
    source = (
        f"read_parquet('{pattern}', hive_partitioning = true, "
        "hive_types = {'account': 'VARCHAR', 'region': 'VARCHAR', 'day': 'DATE'})"
    )
    connection = duckdb.connect()
    types = {
        name: column_type
        for name, column_type, *_ in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    }
    query = f"""
        SELECT event_id, epoch_us(event_time), account, region, CAST(day AS VARCHAR), record,
               resource_arns
        FROM {source}
    """
    rows = [
        {
            "event_id": event_id,
            "event_time_us": event_time_us,
            "account": account,
            "region": region,
            "day": day,
            "record": record,
            "resource_arns": resource_arns,
        }
        for event_id, event_time_us, account, region, day, record, resource_arns in connection.execute(
            query
        ).fetchall()
    ]
    return {"types": types, "rows": rows}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    directory = pathlib.Path(sys.argv[1])
    document = {
        "versions": {"pyarrow": pyarrow.__version__, "duckdb": duckdb.__version__},
        "pyarrow": read_with_pyarrow(directory),
        "duckdb": read_with_duckdb(directory),
    }
    # ASCII only: every non-ASCII character escaped, so the stdout's encoding cannot matter.
    json.dump(document, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
