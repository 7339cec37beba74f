"""Names and Arrow schemas of the lake's tables: the contract between stages.

Paths are relative to the lake root (``paths.lake``). Producers write exactly these columns
(extra columns are allowed only where noted); consumers may rely on them.
User identity in gold is the pseudonymous ``user_key`` (salted hash of the author; the salt is
config/secret and never stored) plus a stable integer ``user_id`` from an append-only id map.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

BRONZE_COMMENTS = "bronze/comments"
BRONZE_SUBMISSIONS = "bronze/submissions"
QUARANTINE = "quarantine"
SILVER_COMMENTS = "silver/comments"
SILVER_SUBMISSIONS = "silver/submissions"
GOLD_USERS = "gold/users"
GOLD_SUBREDDITS = "gold/subreddits"
GOLD_EDGES = "gold/user_subreddit_edges"
GOLD_USER_IMAGES = "gold/user_images"
GOLD_SNIPPETS = "gold/snippets"
GOLD_IMAGE_EMBEDDINGS = "gold/image_embeddings"
GOLD_USER_EMBEDDINGS = "gold/user_embeddings"
GOLD_ATTENTION = "gold/user_subreddit_attention"
GOLD_PERSONAS = "gold/personas"

GOLD_USERS_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("user_key", pa.string()),
    ("n_comments", pa.int64()), ("n_submissions", pa.int64()), ("n_image_posts", pa.int64()),
    ("n_subreddits", pa.int64()), ("first_ts", TS), ("last_ts", TS),
])

GOLD_SUBREDDITS_SCHEMA = pa.schema([
    ("subreddit_id", pa.int64()), ("subreddit", pa.string()),  # subreddit: lower-cased name
    ("n_users", pa.int64()), ("n_comments", pa.int64()), ("n_submissions", pa.int64()),
    ("n_image_posts", pa.int64()), ("nsfw_share", pa.float64()),
])

GOLD_EDGES_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("subreddit_id", pa.int64()),
    ("user_key", pa.string()), ("subreddit", pa.string()),
    ("n_submissions", pa.int64()), ("n_comments", pa.int64()), ("n_image_posts", pa.int64()),
    ("score_sum", pa.int64()), ("first_ts", TS), ("last_ts", TS), ("active_months", pa.int32()),
])

GOLD_USER_IMAGES_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("user_key", pa.string()),
    ("subreddit_id", pa.int64()), ("subreddit", pa.string()),
    ("post_id", pa.string()), ("url", pa.string()), ("created", TS), ("nsfw", pa.bool_()),
])

GOLD_SNIPPETS_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("user_key", pa.string()),
    ("subreddit_id", pa.int64()), ("subreddit", pa.string()),
    ("snippet_id", pa.string()),  # the comment/submission id, e.g. "t1_abc" / "t3_xyz"
    ("kind", pa.string()),  # "comment" | "title"
    ("text", pa.string()), ("score", pa.int64()), ("created", TS),
    ("rank", pa.int32()),  # 1 = best within (user, subreddit)
])

GOLD_IMAGE_EMBEDDINGS_SCHEMA = pa.schema([
    ("url", pa.string()), ("user_id", pa.int64()), ("user_key", pa.string()),
    ("sha256", pa.string()), ("status", pa.string()),  # ok | http_error | timeout | not_image | too_large
    ("embedding", pa.list_(pa.float32())), ("model_id", pa.string()),
])

GOLD_USER_EMBEDDINGS_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("user_key", pa.string()),
    ("embedding", pa.list_(pa.float32())), ("run", pa.string()), ("checkpoint", pa.string()),
])

GOLD_ATTENTION_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("user_key", pa.string()),
    ("subreddit_id", pa.int64()), ("subreddit", pa.string()),
    ("layer", pa.string()),  # e.g. "conv1", "conv2"
    ("head", pa.int32()),  # -1 = mean over heads
    ("attention", pa.float32()),  # sums to 1 over a user's subreddits for each (layer, head)
    ("run", pa.string()),
])

# One row per (user_key, version); versions only grow. Readers take the latest ok version unless
# pinned (zipp.personas.store.latest_personas). `evidence` lists what went into the prompt, each
# item with its token count by the LLM's tokenizer (kind: subreddit | snippet | image).
PERSONA_EVIDENCE_ITEM = pa.struct([
    ("kind", pa.string()), ("subreddit", pa.string()), ("ref", pa.string()),  # ref: snippet_id / image post_id
    ("tokens", pa.int32()), ("truncated", pa.bool_()),
])
GOLD_PERSONAS_SCHEMA = pa.schema([
    ("user_key", pa.string()), ("user_id", pa.int64()), ("version", pa.int32()),
    ("status", pa.string()),  # ok | failed
    ("error", pa.string()),  # why it failed (null when ok)
    ("persona_json", pa.string()),  # validated persona (zipp.personas.schema.Persona), null when failed
    ("persona_text", pa.string()),  # short first-person prose
    ("evidence", pa.list_(PERSONA_EVIDENCE_ITEM)),
    ("evidence_tokens", pa.int32()),  # the evidence block, by the LLM's tokenizer (+ image tokens)
    ("prompt_tokens", pa.int32()), ("completion_tokens", pa.int32()), ("attempts", pa.int32()),
    ("token_budget", pa.int32()), ("ranking", pa.string()),  # attention | tfidf | tfidf_fallback
    ("backend", pa.string()), ("model", pa.string()),
    ("prompt_hash", pa.string()), ("config_hash", pa.string()),
    ("source", pa.string()),  # generated | edited
    ("run", pa.string()), ("created_at", TS),
])

GOLD_REWRITTEN_PROMPTS = "gold/rewritten_prompts"
GOLD_GENERATED_IMAGES = "gold/generated_images"

GOLD_REWRITTEN_PROMPTS_SCHEMA = pa.schema([
    ("user_key", pa.string()), ("user_id", pa.int64()), ("persona_version", pa.int64()),
    ("prompt_id", pa.string()),  # 16 hex of sha256(base prompt)
    ("base_prompt", pa.string()), ("shots", pa.int32()), ("examples", pa.list_(pa.string())),
    ("instruction", pa.string()),  # the first-person roleplay instruction given to the rewriter
    ("rewritten", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("backend", pa.string()), ("model", pa.string()), ("config_hash", pa.string()), ("created_at", TS),
])

GOLD_GENERATED_IMAGES_SCHEMA = pa.schema([
    ("image_id", pa.string()),  # sha256(model_id, prompt, seed, sampler settings)[:16]; the file name
    ("user_key", pa.string()),  # "" for the shared non-personalized (base prompt) image
    ("prompt_id", pa.string()), ("variant", pa.string()),  # "base" | "personalized"
    ("prompt", pa.string()), ("path", pa.string()), ("seed", pa.int64()),
    ("model_id", pa.string()), ("created_at", TS),
])
