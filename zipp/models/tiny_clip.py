"""A tiny open_clip architecture for tests and the offline demo (random weights: outputs are NOT meaningful).

``register()`` adds the config ``zipp-tiny-clip`` to open_clip's model registry with the public
``open_clip.add_model_config``, so the REAL loading path
``open_clip.create_model_and_transforms("zipp-tiny-clip", pretrained=None)`` builds it exactly as it
builds ``ViT-L-14`` on a cluster. The tokenizer is open_clip's bundled BPE (no hub needed).
Registration is per process: Ray actors call it again (``zipp.images.clip.load_clip`` does).
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

TINY_CLIP = "zipp-tiny-clip"

# A ViT-B-style CLIP shrunk to ~3.4M parameters (3.2M of them the token embedding): 64x64 input,
# 16px patches (16 tokens), two 64-wide layers per tower, a 32-d joint space. Vocab and context length stay CLIP's so the
# bundled tokenizer's ids are valid.
TINY_CLIP_CONFIG: dict = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

_lock = threading.Lock()


def register() -> str:
    """Make ``zipp-tiny-clip`` known to open_clip in this process (idempotent). Returns the name."""
    import open_clip

    with _lock:
        if TINY_CLIP in open_clip.list_models():
            return TINY_CLIP
        # add_model_config takes a JSON file (or folder); write ours where any process can read it.
        folder = Path(tempfile.gettempdir()) / "zipp-open-clip-configs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{TINY_CLIP}.json"
        text = json.dumps(TINY_CLIP_CONFIG, indent=2)
        if not path.is_file() or path.read_text() != text:
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_text(text)
            tmp.replace(path)
        open_clip.add_model_config(path)
    return TINY_CLIP
