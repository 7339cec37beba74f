"""open_clip loading (the real create_model_and_transforms path) on the tiny local config.
Random weights: the embeddings' values are not meaningful, only their shape, norm and determinism."""

import numpy as np
import pytest
from PIL import Image

from zipp.config import ImagesConfig, load_config
from zipp.images.clip import Clip, embed_images, embed_texts, get_clip, model_id
from zipp.models.tiny_clip import TINY_CLIP, TINY_CLIP_CONFIG


@pytest.fixture(scope="module")
def clip():
    return Clip(TINY_CLIP, pretrained=None)


def _images():
    return [
        Image.new("RGB", (100, 80), (255, 0, 0)),
        Image.new("L", (30, 30), 100),  # grey: preprocessing converts the mode
        Image.new("RGBA", (64, 200), (0, 0, 255, 128)),
        Image.effect_noise((64, 64), 40).convert("RGB"),
    ]


def test_image_embeddings_are_unit_norm_with_the_model_dim(clip):
    emb = clip.embed_images(_images())
    assert emb.shape == (4, TINY_CLIP_CONFIG["embed_dim"]) == (4, clip.dim)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert clip.embed_images([]).shape == (0, clip.dim)


def test_text_embeddings_share_the_space(clip):
    emb = clip.embed_texts(["a red square", "a photo of a cat", "x" * 500])  # the long one is truncated
    assert emb.shape == (3, clip.dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[1])


def test_random_init_is_the_same_model_in_every_process_and_labelled(clip):
    again = Clip(TINY_CLIP, pretrained=None, seed=0)
    other = Clip(TINY_CLIP, pretrained=None, seed=1)
    imgs = _images()
    np.testing.assert_array_equal(clip.embed_images(imgs), again.embed_images(imgs))
    assert not np.allclose(clip.embed_images(imgs), other.embed_images(imgs))
    assert clip.model_id == "zipp-tiny-clip/random-init"
    assert other.model_id == "zipp-tiny-clip/random-init-seed1"
    assert model_id("ViT-L-14", "openai") == "ViT-L-14/openai"


def test_batching_does_not_change_results(clip):
    imgs = _images()
    small = Clip(TINY_CLIP, pretrained=None, batch_size=1)
    np.testing.assert_allclose(small.embed_images(imgs), clip.embed_images(imgs), atol=1e-5)


def test_module_helpers_use_the_configured_model():
    cfg = ImagesConfig()
    assert get_clip(cfg) is get_clip(cfg)  # loaded once per process
    assert embed_images(_images()[:2], cfg).shape == (2, 32)
    assert embed_texts(["hello"], cfg).shape == (1, 32)


def test_cluster_config_names_a_real_open_clip_model_and_tag():
    import open_clip

    images = load_config(env="cluster").images
    assert (images.model, images.pretrained) == ("ViT-L-14", "openai")
    assert images.model in open_clip.list_models()
    assert images.pretrained in open_clip.list_pretrained_tags_by_model(images.model)
    assert open_clip.get_model_config(images.model)["embed_dim"] == 768


@pytest.mark.slow
def test_the_cluster_architecture_builds_and_embeds_with_random_weights():
    """ViT-L-14 through the same path (no hub here, so random weights: shape only)."""
    big = Clip("ViT-L-14", pretrained=None, device="cpu", batch_size=2)
    assert big.dim == 768 and big.model_id == "ViT-L-14/random-init"
    emb = big.embed_images(_images()[:2])
    assert emb.shape == (2, 768)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert big.embed_texts(["a photo"]).shape == (1, 768)
