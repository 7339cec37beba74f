"""Ray job entrypoint for images that have zipp's dependencies but not the `zipp` console script:

    ray job submit --address http://HEAD:8265 --runtime-env jobs/runtime_env.yaml --working-dir . \
        -- python jobs/entrypoint.py train --lake LAKE --run RUN graph.num_workers=8

It runs the same CLI as `zipp ...` from the uploaded working dir (the job's cwd). Inside a job,
RAY_ADDRESS is set, so `zipp.runtime` joins the cluster instead of starting one; resubmitting a
`train` job with the same --run resumes from the run's latest checkpoint.
"""

import os
import sys

sys.path.insert(0, os.getcwd())

from zipp.cli import main

if __name__ == "__main__":
    sys.argv[0] = "zipp"
    main()
