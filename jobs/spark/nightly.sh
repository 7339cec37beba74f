#!/usr/bin/env bash
# Nightly graph rebuild on the Spark cluster: ingest new/changed months, then the Ray stages.
# Scheduled by jobs/schedule/nightly-cronjob.yaml (Kubernetes) or cron (jobs/schedule/crontab).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
: "${ZIPP_ENV:=cluster}"
spark-submit --properties-file "$repo/infra/spark/spark-defaults.conf" \
  "$here/zipp_spark_entry.py" --env "$ZIPP_ENV" nightly "$@"
