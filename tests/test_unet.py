"""The torch building blocks and the U-Net segmenter, on tiny synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from cellscape import synthetic
from cellscape.errors import CellscapeError
from cellscape.methods.unet import PatchSampler, UNetSegmenter, instance_targets
from cellscape.models import load_model
from cellscape.nn.infer import predict_tiled
from cellscape.nn.train import TrainConfig, train_network, training_device
from cellscape.nn.unet import UNet
from cellscape.post.watershed import maps_to_instances


def test_unet_shapes_and_divisor():
    net = UNet(in_channels=2, out_channels=5, filters=(4, 8, 16))
    assert net.divisor == 4
    assert net(torch.zeros(1, 2, 32, 48)).shape == (1, 5, 32, 48)


def test_tiled_prediction_equals_whole_image_prediction():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 2, 5, padding=2)
    image = np.random.default_rng(0).random((1, 150, 203)).astype(np.float32)
    with torch.inference_mode():
        whole = conv(torch.from_numpy(image)[None])[0].numpy()
    tiled = predict_tiled(conv, image, tile=64, overlap=16, divisor=1)
    assert tiled.shape == whole.shape
    # blending identical overlapping predictions changes nothing, even at tile seams
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_bfloat16_inference_stays_close_to_float32():
    torch.manual_seed(0)
    net = UNet(in_channels=1, out_channels=2, filters=(4, 8, 16)).eval()
    image = np.random.default_rng(0).random((1, 96, 80)).astype(np.float32)
    full = predict_tiled(net, image, tile=64, divisor=net.divisor, transform=torch.sigmoid)
    low = predict_tiled(
        net, image, tile=64, divisor=net.divisor, transform=torch.sigmoid, precision="bfloat16"
    )
    assert low.dtype == np.float32 and low.shape == full.shape
    assert 0 < np.abs(low - full).max() < 0.02  # really computed in bfloat16, and close
    with pytest.raises(ValueError, match="precision"):
        predict_tiled(net, image, precision="float8")


def test_tiles_are_as_few_as_possible_and_share_the_length_evenly():
    from cellscape.nn.infer import _balanced_tile, _starts

    assert _balanced_tile(1024, 512, 32, 16) == 368  # 3 tiles of 368, not 3 of 512
    assert _balanced_tile(300, 512, 32, 16) == 304  # one padded tile
    for length in range(100, 3000, 37):
        edge = _balanced_tile(length, 512, 32, 16)
        starts = _starts(max(length, edge), edge, 32)
        fewest = 1 if length <= 512 else int(np.ceil((length - 32) / (512 - 32)))
        assert edge <= 512 and edge % 16 == 0 and len(starts) == fewest
        assert starts[0] == 0 and starts[-1] + edge == max(length, edge)
        assert all(np.diff(starts) <= edge - 32)  # the overlap is kept


def test_instance_targets_by_hand():
    labels = np.zeros((7, 9), np.int32)
    labels[1:6, 1:4] = 1  # 5 x 3 cell
    labels[1:6, 4:8] = 2  # touching 5 x 4 cell
    classes, distance = instance_targets(labels)
    assert classes[0].max() == 0  # background row
    assert classes[3, 2] == 1  # centre of cell 1: interior
    assert classes[3, 1] == 2 and classes[3, 3] == 2  # its rim, also where it touches cell 2
    assert classes[3, 4] == 2  # cell 2's rim along the shared border
    assert distance[classes == 0].max() == 0
    assert distance[labels == 1].max() == pytest.approx(1.0)
    assert distance[labels == 2].max() == pytest.approx(1.0)
    assert distance[classes == 2].max() == 0  # the rim is the border: distance 0


def test_maps_to_instances_splits_touching_cells_by_their_seeds():
    yy, xx = np.mgrid[:40, :60]
    d1 = np.clip(1 - np.hypot(yy - 20, xx - 20) / 12, 0, None)
    d2 = np.clip(1 - np.hypot(yy - 20, xx - 41) / 12, 0, None)
    distance = np.maximum(d1, d2)
    foreground = (distance > 0).astype(float)
    labels = maps_to_instances(foreground, distance, distance, seed_threshold=0.5)
    assert labels.max() == 2
    assert labels[20, 20] != labels[20, 41]


def test_sampler_batches_have_the_right_shape():
    s = synthetic.nuclei(shape=(96, 96), seed=0)
    pairs = [(s.image.astype(np.float32) / s.image.max(), s.labels)]
    x, y = PatchSampler(pairs, patch=48, batch_size=3, scale_range=(0.7, 1.4))(
        np.random.default_rng(0)
    )
    assert x.shape == (3, 1, 48, 48) and y.shape == (3, 2, 48, 48)
    assert set(np.unique(y[:, 0].numpy())) <= {0.0, 1.0, 2.0}


def test_training_resumes_from_checkpoint(tmp_path):
    def sample(rng):
        x = torch.from_numpy(rng.random((4, 1, 8, 8)).astype(np.float32))
        return x, 2 * x

    def loss(out, y):
        return torch.nn.functional.mse_loss(out, y)

    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 1, 1)
    config = TrainConfig(epochs=2, steps_per_epoch=5, learning_rate=0.05)
    first = train_network(net, sample, loss, config, checkpoint_dir=tmp_path, progress=False)
    assert len(first.train_loss) == 2
    # an "interrupted" run continued to 4 epochs keeps the first two epochs' history
    config.epochs = 4
    resumed = train_network(
        torch.nn.Conv2d(1, 1, 1), sample, loss, config, checkpoint_dir=tmp_path, progress=False
    )
    assert resumed.train_loss[:2] == first.train_loss
    assert len(resumed.train_loss) == 4
    assert resumed.train_loss[-1] < resumed.train_loss[0]


def test_unet_segmenter_learns_synthetic_nuclei_and_round_trips(tmp_path):
    train = [synthetic.nuclei(shape=(96, 96), n_nuclei=12, seed=s) for s in range(3)]
    model = UNetSegmenter(
        filters=(8, 16, 32),
        epochs=4,
        steps_per_epoch=10,
        batch_size=4,
        patch=48,
        learning_rate=5e-3,
    )
    model.fit([s.image for s in train], [s.labels for s in train], progress=False)
    history = model.info_["history"]
    assert history["train_loss"][-1] < history["train_loss"][0]
    test = synthetic.nuclei(shape=(96, 96), n_nuclei=12, seed=10)
    proba = model.predict_proba(test.image)
    assert proba.shape == (3, 96, 96)
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-5)
    labels = model.segment(test.image)
    assert labels.dtype == np.int32
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    # weights are stored in float16: the maps agree to that precision
    np.testing.assert_allclose(again.predict_proba(test.image), proba, atol=2e-2)
    assert again.diameter_ == pytest.approx(model.diameter_)


def _disks(diameter: int, shape=(200, 200)) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for i, (cy, cx) in enumerate([(50, 50), (50, 150), (150, 100)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= (diameter / 2) ** 2] = i
    return labels


@pytest.mark.parametrize(
    ("found", "given", "expected_scales"),
    [
        (40, None, [1.0, 0.5]),  # cells twice the learned size: segment again at half size
        (22, None, [1.0]),  # within 25% of the learned size: one pass is enough
        (40, 10.0, [2.0]),  # a diameter given by the user wins, no estimate
        ("40+specks", None, [1.0, 0.5]),  # 1-px specks outnumbering the cells are ignored
    ],
)
def test_auto_diameter_segments_again_at_the_learned_size(found, given, expected_scales):
    model = UNetSegmenter(auto_diameter=True, diameter=given)
    model.net_, model.diameter_ = object(), 20.0
    scales = []

    def fake_maps(x, scale, shape):
        # the fake network sees cells of size `found` at scale 1, of the learned size otherwise
        scales.append(round(scale, 2))
        maps = np.zeros((4, *shape), np.float32)
        if scale != 1.0:
            maps[0] = _disks(20) == 0  # P(background)
        elif found == "40+specks":
            foreground = _disks(40) > 0
            foreground[::20, ::20] = True  # 100 one-pixel specks against 3 cells
            maps[0] = ~foreground
        else:
            maps[0] = _disks(found) == 0
        return maps

    model._maps_at = fake_maps
    model.labels_from_maps = lambda maps: ndi.label(maps[0] < 0.5)[0]
    labels = model.segment(np.zeros((200, 200), np.float32))
    assert scales == expected_scales
    assert labels.max() == 3 if scales[-1] != 1.0 else labels.max() >= 3


def _he_like(seed: int = 0):
    """A synthetic H&E-like colour image: purple (hematoxylin) nuclei on pink (eosin) tissue
    whose luminance is about that of the nuclei, and their labels."""
    rng = np.random.default_rng(seed)
    labels = synthetic.nuclei(shape=(96, 96), n_nuclei=10, seed=seed).labels
    nuclei = labels > 0
    pink, purple = np.array([230, 150, 190.0]), np.array([120, 60, 170.0])
    rgb = np.where(nuclei[None], purple[:, None, None], pink[:, None, None])
    # patches of darker pink tissue as dark as the nuclei in luminance
    tissue = ndi.gaussian_filter(rng.random((96, 96)), 6) > 0.5
    rgb = np.where(tissue[None] & ~nuclei[None], np.array([175, 80, 120.0])[:, None, None], rgb)
    rgb = rgb + rng.normal(0, 4, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8), labels


def test_hematoxylin_plane_separates_purple_nuclei_that_luminance_mixes_with_tissue():
    from cellscape.io import ImageMeta
    from cellscape.preprocess import hematoxylin, is_coloured, to_single_channel

    rgb, labels = _he_like()
    meta = ImageMeta(axes="CYX", channel_names=("red", "green", "blue"), rgb=True)
    nuclei = labels > 0

    def separation(plane):  # nuclei vs the rest, in units of the rest's spread
        return abs(plane[nuclei].mean() - plane[~nuclei].mean()) / plane[~nuclei].std()

    luminance = to_single_channel(rgb, meta)
    h = to_single_channel(rgb, meta, colour="hematoxylin")
    np.testing.assert_array_equal(h, hematoxylin(rgb))
    assert h[nuclei].mean() > h[~nuclei].mean()  # nuclei bright
    assert separation(h) > 2 * separation(luminance)
    # a grey image stored as RGB keeps its luminance, whatever ``colour`` says
    grey = np.repeat(rgb[:1], 3, axis=0)
    assert is_coloured(rgb) and not is_coloured(grey)
    np.testing.assert_array_equal(
        to_single_channel(grey, meta, colour="hematoxylin"), to_single_channel(grey, meta)
    )


def test_warm_start_continues_from_the_fitted_weights():
    train = [synthetic.nuclei(shape=(64, 64), n_nuclei=6, seed=s) for s in range(2)]
    images, labels = [s.image for s in train], [s.labels for s in train]
    kw = {"filters": (4, 8), "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch": 32}
    model = UNetSegmenter(**kw).fit(images, labels, progress=False)

    def weights():  # the learned parameters (batch-norm statistics move in any training step)
        return {k: v.detach().clone() for k, v in model.net_.named_parameters()}

    before = weights()
    # no learning at all: a warm start keeps the weights, a cold start draws new ones
    model.set_params(learning_rate=0.0, seed=1)
    model.fit(images, labels, progress=False, warm_start=True)
    assert all(torch.equal(before[k], v) for k, v in weights().items())
    model.fit(images, labels, progress=False)
    assert not all(torch.equal(before[k], v) for k, v in weights().items())
    with pytest.raises(ValueError, match="colour"):
        UNetSegmenter(colour="sepia", **kw).fit(images, labels, progress=False)
    with pytest.raises(Exception, match="not"):
        UNetSegmenter(**kw).fit(images, labels, progress=False, warm_start=True)


def test_folding_batchnorm_keeps_the_outputs_and_leaves_the_trainable_net_alone():
    from cellscape.nn.unet import fuse_batchnorm

    torch.manual_seed(0)
    net = UNet(in_channels=1, out_channels=3, filters=(4, 8, 16))
    net.train()
    for _ in range(3):  # give the batch norms non-trivial running statistics
        net(torch.randn(2, 1, 32, 32) * 3 + 1)
    net.eval()
    fused = fuse_batchnorm(net)
    x = torch.randn(1, 1, 48, 64)
    with torch.inference_mode():
        np.testing.assert_allclose(fused(x).numpy(), net(x).numpy(), atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_inference_follows_weights_changed_in_place():
    train = [synthetic.nuclei(shape=(64, 64), n_nuclei=6, seed=s) for s in range(2)]
    kw = {"filters": (4, 8), "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch": 32}
    model = UNetSegmenter(**kw).fit(
        [s.image for s in train], [s.labels for s in train], progress=False
    )
    before = model.predict_maps(train[0].image)
    np.testing.assert_allclose(model.predict_maps(train[0].image), before)  # cached, same
    with torch.no_grad():  # as an optimiser step on the same network would
        model.net_.head.bias.add_(5.0)
    assert not np.allclose(model.predict_maps(train[0].image), before)


def test_learned_physical_size_rescales_by_the_pixel_size_of_each_image():
    from cellscape.io import ImageMeta

    train = [synthetic.nuclei(shape=(64, 64), n_nuclei=5, seed=s) for s in range(2)]
    model = UNetSegmenter(filters=(4, 8), epochs=1, steps_per_epoch=1, batch_size=2, patch=32)
    # no pixel size recorded: sizes are known in pixels only
    model.fit([s.image for s in train], [s.labels for s in train], progress=False)
    assert model.diameter_um_ is None and not model.uses_pixel_size
    assert model.expected_diameter(ImageMeta(axes="YX", pixel_size=0.5)) is None
    # trained on 0.25 µm pixels: an image of 0.5 µm pixels shows the same cells half as wide
    metas = [ImageMeta(axes="YX", pixel_size=0.25)] * 2
    model.fit([s.image for s in train], [s.labels for s in train], metas, progress=False)
    assert model.uses_pixel_size
    assert model.diameter_um_ == pytest.approx(model.diameter_ * 0.25, rel=0.05)
    expected = model.expected_diameter(ImageMeta(axes="YX", pixel_size=0.5))
    assert model.scale_for(expected) == pytest.approx(2.0, rel=0.05)
    assert model.expected_diameter(ImageMeta(axes="YX")) is None  # no pixel size: learned scale
    model.set_params(diameter=10.0)  # a diameter given by the user wins
    assert model.expected_diameter(ImageMeta(axes="YX", pixel_size=0.5)) == 10.0
    # and the learned physical size survives save / load
    state = model._state()
    again = UNetSegmenter()
    again._set_state(state)
    assert again.diameter_um_ == pytest.approx(model.diameter_um_)


def test_bfloat16_training_learns_and_leaves_a_float32_network():
    # bfloat16 autocast runs on every CPU torch supports (slowly where it is not native)
    torch.manual_seed(0)
    net = UNet(1, 2, filters=(4, 8))
    rng_data = np.random.default_rng(1)
    x = torch.from_numpy(rng_data.random((4, 1, 16, 16)).astype(np.float32))
    target = (x > 0.5).float()

    def sample(rng):
        return x, target

    def loss(out, y):
        assert out.dtype == torch.float32  # the loss always sees float32
        return torch.nn.functional.binary_cross_entropy_with_logits(out[:, :1], y)

    config = TrainConfig(epochs=3, steps_per_epoch=20, learning_rate=0.02, precision="bfloat16")
    history = train_network(net, sample, loss, config, progress=False)
    assert history.train_loss[-1] < 0.7 * history.train_loss[0]
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert all(p.is_contiguous() for p in net.parameters())
    with pytest.raises(ValueError, match="precision"):
        train_network(net, sample, loss, TrainConfig(precision="half"), progress=False)


def _regression_problem():
    def sample(rng):
        x = torch.from_numpy(rng.random((4, 1, 8, 8)).astype(np.float32))
        return x, 2 * x

    def loss(out, y):
        return torch.nn.functional.mse_loss(out, y)

    return sample, loss


def test_training_with_sampler_workers_learns():
    sample, loss = _regression_problem()
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 1, 1)
    config = TrainConfig(epochs=3, steps_per_epoch=10, learning_rate=0.05, workers=2)
    history = train_network(net, sample, loss, config, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    assert next(net.parameters()).device.type == "cpu"


def test_training_device_auto_and_a_missing_gpu():
    if torch.cuda.is_available():
        assert training_device("auto").type == "cuda"
        return
    assert training_device("auto").type == "cpu"
    sample, loss = _regression_problem()
    with pytest.raises(CellscapeError, match="no GPU"):
        train_network(torch.nn.Conv2d(1, 1, 1), sample, loss, TrainConfig(device="cuda"))


def test_tune_thresholds_sets_the_best_pair_and_returns_every_pair():
    model = load_model("nuclei")
    sims = [synthetic.nuclei(shape=(96, 96), n_nuclei=10, radius=(5, 8), seed=s) for s in (7, 8)]
    rows = model.tune_thresholds(
        [s.image for s in sims], [s.labels for s in sims], foreground=(0.3, 0.9), seeds=(0.4, 0.95)
    )
    assert [(r["foreground"], r["seed"]) for r in rows] == [
        (0.3, 0.4),
        (0.3, 0.95),
        (0.9, 0.4),
        (0.9, 0.95),
    ]
    best = max(rows, key=lambda r: r["dsb2018"])
    assert (model.foreground_threshold, model.seed_threshold) == (best["foreground"], best["seed"])
    # seeds where the distance exceeds 0.95 are too few: that pair cannot be the best
    assert best["seed"] == 0.4 and best["dsb2018"] > min(r["dsb2018"] for r in rows)


def _two_channel(seed: int):
    """(image (2, Y, X), meta naming the channels, whole-cell labels) of a synthetic field."""
    from cellscape.io import ImageMeta

    s = synthetic.whole_cells(shape=(96, 96), n_cells=6, cell_radius=(12, 16), seed=seed)
    image = np.stack([s.image, s.nuclear_image]).astype(np.float32)
    return image, ImageMeta(axes="CYX", channel_names=("cyto", "nuclear")), s.labels


def test_multichannel_unet_matches_channels_by_name_and_round_trips(tmp_path):
    train = [_two_channel(s) for s in range(3)]
    model = UNetSegmenter(
        filters=(8, 16, 32),
        channels=("cyto", "nuclear"),
        epochs=3,
        steps_per_epoch=8,
        batch_size=4,
        patch=48,
        learning_rate=5e-3,
    )
    model.fit([t[0] for t in train], [t[2] for t in train], [t[1] for t in train], progress=False)
    first_conv = next(m for m in model.net_.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 2
    history = model.info_["history"]
    assert history["train_loss"][-1] < history["train_loss"][0]

    image, meta, _ = _two_channel(10)
    maps = model.predict_maps(image, meta)
    assert maps.shape == (4, 96, 96)
    # the channels are picked by name: stored in the other order, the same input results
    swapped = meta.with_(channel_names=("nuclear", "cyto"))
    np.testing.assert_allclose(model.predict_maps(image[::-1].copy(), swapped), maps, atol=1e-5)
    # swapping the channels of an unnamed image changes what the network sees
    unnamed = meta.with_(channel_names=())
    np.testing.assert_allclose(model.predict_maps(image, unnamed), maps, atol=1e-5)
    assert np.abs(model.predict_maps(image[::-1].copy(), unnamed) - maps).max() > 1e-3

    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.channels == ("cyto", "nuclear")
    np.testing.assert_allclose(again.predict_maps(image, meta), maps, atol=2e-2)


def test_multichannel_unet_refuses_a_single_channel_image():
    model = UNetSegmenter(filters=(8, 16), channels=("phase", "nuclear"))
    model.net_ = model._build()
    with pytest.raises(CellscapeError, match="needs 2 channels"):
        model.segment(np.zeros((64, 64), np.float32))


def test_sampler_crops_every_channel_alike():
    _, _, labels = _two_channel(0)
    # the second channel is the first one negated: any crop, zoom, flip or rotation must keep
    # the pixels of the two channels aligned (gain and offset differ per channel); a smooth
    # field with a standard deviation of 1 leaves the added noise (<= 0.08) negligible
    field = ndi.gaussian_filter(np.random.default_rng(0).random(labels.shape), 3)
    field = ((field - field.mean()) / field.std()).astype(np.float32)
    x = np.stack([field, -field])
    sampler = PatchSampler([(x, labels)], patch=40, batch_size=6, scale_range=(0.7, 1.4))
    xb, yb = sampler(np.random.default_rng(1))
    assert xb.shape == (6, 2, 40, 40) and yb.shape == (6, 2, 40, 40)
    for a, b in zip(xb[:, 0].numpy(), xb[:, 1].numpy(), strict=True):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] < -0.99


def test_zoomed_out_crops_stay_inside_the_image():
    # one cell covering the whole 100 x 100 image: a crop of 64 / 0.5 = 128 px would need
    # padding, whose pixels would be labelled background; the crop shrinks to the image instead
    labels = np.ones((100, 100), np.int32)
    x = np.random.default_rng(0).random((100, 100)).astype(np.float32)
    sampler = PatchSampler([(x, labels)], patch=64, batch_size=4, scale_range=(0.5, 0.5))
    _, y = sampler(np.random.default_rng(0))
    assert y.shape == (4, 2, 64, 64)
    assert (y[:, 0] > 0).all()


def test_saved_weights_keep_values_beyond_float16(tmp_path):
    from cellscape.nn.train import load_weights, save_weights

    # a batch-norm running variance of 1e6 (seen after long training): a float16 cast would
    # store it as infinity and silently break the saved network
    net = UNet(in_channels=1, out_channels=4, filters=(8, 16))
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var[:3] = 1e6
    save_weights(net, tmp_path / "w.safetensors")
    again = UNet(in_channels=1, out_channels=4, filters=(8, 16))
    load_weights(again, tmp_path / "w.safetensors")
    for (name, a), b in zip(net.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.isfinite(b.float()).all(), name
        # float16 keeps 3 significant digits; the large tensor stays float32 and exact
        torch.testing.assert_close(b.float(), a.float(), rtol=1e-3, atol=1e-3)
    bn_again = next(m for m in again.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert float(bn_again.running_var[0]) == 1e6
