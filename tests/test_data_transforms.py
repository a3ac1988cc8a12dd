"""Transforms on single images and whole batches, against plain loop references."""
import numpy as np
import pytest

import tinygrad_cnn.data as D
from tinygrad_cnn.data import transforms as T


def images(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.normal(size=shape).astype(dtype)


# ----------------------------------------------------------------------------- references (loops)

def ref_to_tensor(x):
    """uint8 (H, W) / (H, W, C) -> float32 (C, H, W) / 255, one pixel at a time."""
    if x.ndim == 2:
        x = x[:, :, None]
    H, W, C = x.shape
    out = np.zeros((C, H, W), np.float32)
    for c in range(C):
        for i in range(H):
            for j in range(W):
                out[c, i, j] = x[i, j, c] / 255.0
    return out


def ref_normalize(x, mean, std):
    out = np.zeros_like(x)
    for c in range(x.shape[0]):
        out[c] = (x[c] - mean[c]) / std[c]
    return out


def ref_crop_chw(x, top, left, h, w, pad):
    """Pad a (C, H, W) image with zeros by (left, top, right, bottom), then crop."""
    C, H, W = x.shape
    pl, pt, pr, pb = pad
    padded = np.zeros((C, H + pt + pb, W + pl + pr), x.dtype)
    for c in range(C):
        for i in range(H):
            for j in range(W):
                padded[c, i + pt, j + pl] = x[c, i, j]
    return padded[:, top:top + h, left:left + w]


# ----------------------------------------------------------------------------- ToTensor / Normalize

def test_to_tensor_single_and_batch():
    grey, rgb, batch = images((5, 7)), images((5, 7, 3)), images((4, 5, 7, 3))
    np.testing.assert_allclose(T.ToTensor()(grey), ref_to_tensor(grey), rtol=1e-6)
    np.testing.assert_allclose(T.ToTensor()(rgb), ref_to_tensor(rgb), rtol=1e-6)
    out = T.ToTensor()(batch)
    assert out.shape == (4, 3, 5, 7) and out.dtype == np.float32 and out.flags.c_contiguous
    for n in range(4):
        np.testing.assert_allclose(out[n], ref_to_tensor(batch[n]), rtol=1e-6)
    np.testing.assert_array_equal(T.ToTensor().apply_batch(batch), out)
    assert out.min() >= 0 and out.max() <= 1
    assert T.ToTensor()(np.array([[0, 255]], np.uint8)).tolist() == [[[0.0, 1.0]]]
    f = images((3, 5, 7), np.float64)
    assert T.ToTensor()(f).dtype == np.float32 and np.allclose(T.ToTensor()(f), f)  # float: already CHW
    with pytest.raises(TypeError, match="uint8"):
        T.ToTensor()(np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match="shape"):
        T.ToTensor()(np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="4-D batch"):
        T.ToTensor().apply_batch(np.zeros((4, 4, 3), np.uint8))


def test_normalize():
    x = images((3, 4, 5), np.float32)
    mean, std = (0.1, -0.2, 0.3), (0.5, 2.0, 0.25)
    np.testing.assert_allclose(T.Normalize(mean, std)(x), ref_normalize(x, mean, std), rtol=1e-5, atol=1e-6)
    batch = images((6, 3, 4, 5), np.float32, seed=1)
    out = T.Normalize(mean, std)(batch)
    assert out.dtype == np.float32
    for n in range(6):
        np.testing.assert_allclose(out[n], ref_normalize(batch[n], mean, std), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(T.Normalize((0.5,), (0.5,))(x), (x - 0.5) / 0.5, rtol=1e-5, atol=1e-6)
    y = x.copy()
    T.Normalize(mean, std, inplace=True)(y)
    np.testing.assert_allclose(y, ref_normalize(x, mean, std), rtol=1e-5, atol=1e-6)
    assert T.Normalize(mean, std)(x.astype(np.float64)).dtype == np.float64
    with pytest.raises(ValueError, match="3 values but the input has 2 channels"):
        T.Normalize(mean, std)(images((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="std must not contain 0"):
        T.Normalize((0.0,), (0.0,))
    with pytest.raises(TypeError, match="ToTensor"):
        T.Normalize((0.0,), (1.0,))(images((4, 4)))


# ----------------------------------------------------------------------------- RandomCrop

@pytest.mark.parametrize("padding, pad4", [(None, (0, 0, 0, 0)), (2, (2, 2, 2, 2)), ((1, 3), (1, 3, 1, 3)),
                                           ((0, 1, 2, 3), (0, 1, 2, 3))])
def test_random_crop_batch_matches_loop_reference(padding, pad4):
    x = images((9, 3, 6, 7), np.float32)
    h, w = 5, 4
    out = T.RandomCrop((h, w), padding=padding, generator=3)(x)
    assert out.shape == (9, 3, h, w) and out.flags.c_contiguous
    rng = np.random.default_rng(3)  # the same draws: all tops, then all lefts
    H, W = 6 + pad4[1] + pad4[3], 7 + pad4[0] + pad4[2]
    tops, lefts = rng.integers(0, H - h + 1, size=9), rng.integers(0, W - w + 1, size=9)
    for n in range(9):
        np.testing.assert_array_equal(out[n], ref_crop_chw(x[n], tops[n], lefts[n], h, w, pad4))


def test_random_crop_each_image_gets_its_own_offsets_and_all_offsets_occur():
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6).repeat(400, axis=0)
    out = T.RandomCrop(4, padding=1, generator=0)(x)
    # identify each crop by brute force among the 5x5 possible offsets
    seen = set()
    for o in out:
        matches = [(t, l) for t in range(5) for l in range(5)
                   if np.array_equal(o[0], ref_crop_chw(x[0], t, l, 4, 4, (1,) * 4)[0])]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {(t, l) for t in range(5) for l in range(5)}


@pytest.mark.parametrize("shape", [(6, 7), (6, 7, 3), (5, 6, 7, 3), (5, 6, 7, 1)])
def test_random_crop_uint8_channels_last_agrees_with_float_channels_first(shape):
    x = images(shape)
    a = T.ToTensor()(T.RandomCrop(4, padding=2, generator=9)(x))
    b = T.RandomCrop(4, padding=2, generator=9)(T.ToTensor()(x))
    np.testing.assert_array_equal(a, b)
    assert a.shape[-2:] == (4, 4)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_random_crop_padding_modes_vs_np_pad(mode):
    x = images((2, 3, 5, 5), np.float32)
    out = T.RandomCrop(9, padding=2, padding_mode=mode, fill=0.5)(x)  # 9 = whole padded image: no randomness
    kwargs = {"constant_values": 0.5} if mode == "constant" else {}
    np.testing.assert_array_equal(out, np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=mode, **kwargs))


def test_random_crop_pad_if_needed_and_errors():
    x = images((3, 4, 5), np.float32)
    out = T.RandomCrop((6, 5), pad_if_needed=True, generator=0)(x)
    assert out.shape == (3, 6, 5)
    with pytest.raises(ValueError, match="larger than the"):
        T.RandomCrop(6)(x)
    with pytest.raises(ValueError, match="padding_mode"):
        T.RandomCrop(2, padding_mode="wrap")
    with pytest.raises(TypeError, match="padding"):
        T.RandomCrop(2, padding=(1, 2, 3))
    with pytest.raises(TypeError, match="size"):
        T.RandomCrop(2.5)


# ----------------------------------------------------------------------------- RandomHorizontalFlip

def test_random_horizontal_flip():
    x = images((50, 3, 4, 5), np.float32)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(x), x)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    out = T.RandomHorizontalFlip(p=0.5, generator=4)(x)
    flipped = np.random.default_rng(4).random(50) < 0.5  # the reference's draws
    for n in range(50):
        expected = x[n][:, :, ::-1] if flipped[n] else x[n]
        np.testing.assert_array_equal(out[n], expected)
    assert 10 < flipped.sum() < 40
    u8 = images((50, 4, 5, 3))
    out8 = T.RandomHorizontalFlip(p=0.5, generator=4)(u8)  # channels last: W is axis 2
    np.testing.assert_array_equal(T.ToTensor()(out8),
                                  T.RandomHorizontalFlip(p=0.5, generator=4)(T.ToTensor()(u8)))
    single = images((4, 5, 3))
    assert np.array_equal(T.RandomHorizontalFlip(p=1.0)(single), single[:, ::-1])
    with pytest.raises(ValueError, match="probability"):
        T.RandomHorizontalFlip(p=1.5)


# ----------------------------------------------------------------------------- Compose, seeding, datasets

def test_compose_batch_equals_per_image_for_deterministic_transforms():
    tf = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.4, 0.3), (0.2, 0.2, 0.2))])
    batch = images((6, 5, 5, 3))
    out = tf.apply_batch(batch)
    for n in range(6):
        np.testing.assert_allclose(out[n], tf(batch[n]), rtol=1e-6)
    assert T.supports_batches(tf) and "Normalize" in repr(tf)
    mixed = T.Compose([T.ToTensor(), lambda a: a * 2])
    assert not T.supports_batches(mixed)
    assert T.supports_batches(T.Compose([T.ToTensor(), T.Lambda(lambda a: a * 2, batched=True)]))
    assert not T.supports_batches(T.Lambda(lambda a: a))
    with pytest.raises(TypeError, match="callable"):
        T.Compose([1])


def test_random_transforms_are_reproducible_from_the_global_seed():
    x = images((8, 3, 6, 6), np.float32)
    tf = T.Compose([T.RandomCrop(4, padding=1), T.RandomHorizontalFlip()])
    D.seed(21)
    a = tf(x)
    b = tf(x)
    D.seed(21)
    np.testing.assert_array_equal(tf(x), a)
    assert not np.array_equal(a, b)
    c1 = T.RandomCrop(4, generator=np.random.default_rng(1))(x)
    c2 = T.RandomCrop(4, generator=1)(x)
    np.testing.assert_array_equal(c1, c2)
    D.seed(0)


def test_image_dataset_batch_path_matches_per_sample_path():
    grey = images((10, 6, 6))
    labels = np.arange(10) % 3
    for tf in [None, T.Compose([T.RandomCrop(4, generator=0)]), T.Compose([T.ToTensor(), T.RandomCrop(4, padding=1)]),
               T.Compose([T.ToTensor(), T.Lambda(lambda a: a + 1)])]:
        ds = D.ImageDataset(grey, labels, transform=tf)
        idx = np.array([3, 1, 4, 1, 5])
        xb, yb = ds[idx]
        singles = [ds[int(i)] for i in idx]
        assert xb.shape == np.stack([s[0] for s in singles]).shape
        assert yb.tolist() == [s[1] for s in singles]
    ds = D.ImageDataset(grey, labels, transform=T.Compose([T.ToTensor(), T.Lambda(lambda a: a + 1)]),
                        target_transform=lambda t: t * 10)
    xb, yb = ds[np.array([2, 0])]
    np.testing.assert_allclose(xb, np.stack([ds[2][0], ds[0][0]]))
    assert yb.tolist() == [20, 0] and yb.dtype == np.int64
    ds.target_transform = T.Lambda(lambda t: t + 100, batched=True)  # applied to the label array at once
    assert ds[np.array([2, 0])][1].tolist() == [102, 100] and ds[2][1] == 102
    with pytest.raises(ValueError, match="uint8"):
        D.ImageDataset(grey.astype(np.float32), labels)
    with pytest.raises(ValueError, match="targets"):
        D.ImageDataset(grey, labels[:3])


def test_batch_transform_speed_is_vectorised():
    """A CIFAR-sized batch of 256 with the full augmentation takes well under 50 ms."""
    import time
    batch = images((256, 32, 32, 3))
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    tf.apply_batch(batch)
    start = time.perf_counter()
    for _ in range(3):
        out = tf.apply_batch(batch)
    assert out.shape == (256, 3, 32, 32)
    assert (time.perf_counter() - start) / 3 < 0.05
