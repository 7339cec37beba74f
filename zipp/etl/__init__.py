"""Spark ETL: monthly Reddit dump files -> Delta bronze/quarantine -> silver -> gold.

Order of the modules follows the data:

- ``sources``  find RC_/RS_/Arctic-Shift files, their kind and month, fingerprints (size, mtime, sha256)
- ``split``    decompress a file (python-zstandard, 2 GiB window) into line-aligned chunks
- ``parse``    one chunk -> typed bronze rows + quarantine rows (polars/orjson, Arrow out; no Spark)
- ``bronze``   Spark runs split and parse as tasks, commits each month atomically
- ``silver``   dedup, timestamps, deleted/bot/image/NSFW flags, salted ``user_key``
- ``gold``     id maps, user-subreddit edges, users, subreddits, user_images, snippets (incremental)
- ``quality``  great-expectations gates with an HTML report
- ``delta``    the one place that writes/reads Delta (native Spark Delta or Parquet + delta-rs commit)
- ``manifest`` file and run manifests, nightly planning
- ``forget``   remove authors everywhere, vacuum, record the deletion
- ``pipeline`` / ``stage`` / ``cli``  wiring
"""

import os as _os
import sys as _sys

# Spark's Python workers must run this interpreter (its venv has polars/orjson/zstandard); a local
# session started after this import picks it up. A cluster sets spark.pyspark.python itself.
_os.environ.setdefault("PYSPARK_PYTHON", _sys.executable)
