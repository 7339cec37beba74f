"""`ray job submit` entry point for persona mining (the `zipp personas` command on the cluster).

Inside a Ray job RAY_ADDRESS is set, so zipp joins the cluster instead of starting one; the
Ray Data actors (vLLM replicas, HTTP clients, ...) are scheduled on the cluster's workers.

    ray job submit --address http://ray-head:8265 --working-dir . \
        --runtime-env-json '{"env_vars": {"ZIPP_ENV": "cluster", "HF_HUB_OFFLINE": "0"}}' \
        -- python jobs/ray/personas.py --lake /mnt/lake/zipp --run personas-$(date +%F) \
           personas.backend=vllm personas.model=meta-llama/Llama-3.1-8B-Instruct personas.workers=8

Any `zipp personas` option or key=value override may follow. For personas.backend=openai, put
the endpoint/key variables named by personas.openai.base_url_env / api_key_env in env_vars
(they are forwarded to the actors; they never go into config files).
"""

import sys

if __name__ == "__main__":
    from zipp.cli import main

    sys.argv = ["zipp", "personas", *sys.argv[1:]]
    main()
