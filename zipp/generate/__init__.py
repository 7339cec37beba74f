"""Realistic synthetic Reddit dumps (Pushshift / Arctic-Shift style) with planted, recoverable
structure and ground truth.

API::

    from zipp.generate import generate_dump
    summary = generate_dump(cfg: GenerateConfig, out_dir, images_dir=None, progress=None)

Layout of ``out_dir``::

    RC_YYYY-MM.zst, RS_YYYY-MM.zst   comments / submissions, one per month: zstd NDJSON in ONE frame that
                                     declares a 2 GiB window (like ``zstd --long=31``): read with
                                     ``ZstdDecompressor(max_window_size=2**31)``; the default decompressor
                                     (and Spark's/DuckDB's readers) fail with "Frame requires too much memory".
    prompts.parquet                  author, prompt, created (timestamp[us, UTC]): text-to-image prompt histories
    images/HOST/PATH                 the image mirror (when cfg.images; or ``images_dir``)
    truth/users.parquet              planted personas + per-user counts of good, first-emission lines
    truth/subreddits.parquet         subreddit, subreddit_id, community|"location"|"general", location, is_visual
    truth/images.parquet             every image URL: post, author, community, aesthetic, dead, ...
    truth/duplicates.parquet         re-crawled lines: id, first_file, dup_file, scores, retrieved_on
    truth/bad_lines.json             injected bad lines per file and kind (see zipp.generate.badlines)
    truth/manifest.json              config + per-file counts (total/good/bad lines, duplicate ids, ads,
                                     deleted, removed, bots, image posts, galleries, crossposts)

Image mirror rule (the image fetcher relies on it): an image URL ``https://HOST/PATH?QUERY`` resolves to
the file ``IMAGES/HOST/PATH``: scheme dropped, query string dropped (URLs inside JSON are HTML-escaped
with ``&amp;`` as in the real dumps; only the path matters). E.g. ``https://i.redd.it/abc.png`` ->
``images/i.redd.it/abc.png``; gallery ``https://preview.redd.it/<id>.png?width=64&amp;format=png&amp;...``
-> ``images/preview.redd.it/<id>.png``. Mirrored: ``url`` of image posts (i.redd.it, i.imgur.com),
``preview.images[].source.url`` and ``.resolutions[].url`` of those posts, and ``media_metadata[*].s.u`` /
``.p[].u`` of galleries. Not mirrored: thumbnails (b.thumbs.redditmedia.com), v.redd.it, link posts.
A share (``dead_image_rate``) of image URLs is dead on purpose (no file); ``truth/images.parquet`` lists
them (``dead``).

Era drift by the month written: ``created_utc`` is a JSON string for 2008-01..2015-11 (2015-02 mixed),
an int otherwise (a float in Arctic format from 2023-11, as Arctic-Shift writes); ``author_fullname`` and
comment ``permalink`` from 2018-01; i.redd.it from 2016-06; ``hosted:video`` from 2017-06; crossposts from
2017-08; galleries (``is_gallery``, ``gallery_data``, ``media_metadata``) from 2020-06, ``post_hint:
gallery`` from 2020-08. ``format="arctic"`` adds ``_meta`` (``retrieved_2nd_on``; some ``removal_type`` /
``was_deleted_later``; some ``note: no_2nd_retrieval``), ``author_fullname``, ``name``, ``permalink``,
``created`` and the rest of the Arctic-Shift field set, with sorted keys.

Re-crawls: a share (``duplicate_rate``) of good lines of month m is re-emitted in month m+1's file with
the same id, a changed score and a later ``retrieved_on``. Months are generated in order; each month's own
content comes from PCG64 streams seeded by (seed, month, kind), so it does not depend on other months
except for those re-emitted lines.
"""

from zipp.generate.badlines import classify_line, is_image_post
from zipp.generate.dump import estimate_lines, generate_dump
from zipp.generate.images import url_to_path
from zipp.generate.zst import iter_raw_lines

__all__ = ["classify_line", "estimate_lines", "generate_dump", "is_image_post", "iter_raw_lines", "url_to_path"]
