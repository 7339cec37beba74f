"""spark-submit entry point: runs any `zipp` subcommand inside the session spark-submit made.

zipp's runtime reuses the active SparkSession, so the same commands that start a local[N]
session on a laptop run on the cluster's executors here:

    spark-submit --properties-file infra/spark/spark-defaults.conf \
        jobs/spark/zipp_spark_entry.py --env cluster ingest --input /mnt/reddit --lake /mnt/lake/zipp
"""

import sys

from pyspark.sql import SparkSession

if __name__ == "__main__":
    SparkSession.builder.appName("zipp").getOrCreate()  # becomes the active session zipp reuses
    from zipp.cli import main

    sys.argv[0] = "zipp"
    main()
