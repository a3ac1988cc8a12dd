"""Dataset, TensorDataset, Subset, random_split, samplers, default_collate and the
DataLoader: coverage of every sample, seeding, epochs, drop_last, prefetch thread."""
import collections
import gc
import threading
import time

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_cnn.data as D


def wait_for_threads(baseline, timeout=5.0):
    gc.collect()
    deadline = time.time() + timeout
    while threading.active_count() > baseline and time.time() < deadline:
        time.sleep(0.01)
    return threading.active_count()


class PlainDataset(D.Dataset):
    """Per-sample only (no batch indexing): (x, label) with x = [i, i]."""

    def __init__(self, n, fail_at=None, delay=0.0):
        self.n, self.fail_at, self.delay = n, fail_at, delay
        self.fetched = []
        self.threads = set()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if self.delay:
            time.sleep(self.delay)
        self.threads.add(threading.current_thread().name)
        if i == self.fail_at:
            raise KeyError(f"sample {i} is broken")
        self.fetched.append(i)
        return np.array([i, i], dtype=np.float32), int(i)


def flat_labels(loader):
    return np.concatenate([y for _, y in loader]) if len(loader) else np.zeros(0, np.int64)


# ----------------------------------------------------------------------------- datasets

def test_tensor_dataset():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 3
    ds = D.TensorDataset(x, y)
    assert len(ds) == 10 and ds.batch_indexable
    a, b = ds[4]
    np.testing.assert_array_equal(a, x[4]) and b == y[4]
    xb, yb = ds[np.array([9, 0, -1])]
    np.testing.assert_array_equal(xb, x[[9, 0, 9]])
    np.testing.assert_array_equal(yb, y[[9, 0, 9]])
    assert ds[[1, 2]][0].shape == (2, 2)
    with pytest.raises(ValueError, match="same first dimension"):
        D.TensorDataset(x, y[:5])
    with pytest.raises(ValueError, match="at least one"):
        D.TensorDataset()
    with pytest.raises(IndexError, match="10 is out of range"):
        ds[10]
    with pytest.raises(IndexError, match="out of range"):
        ds[np.array([0, 11])]
    with pytest.raises(TypeError, match="index"):
        ds["a"]


def test_subset_and_concat():
    x = np.arange(10)
    ds = D.TensorDataset(x)
    sub = D.Subset(ds, [7, 2, 5])
    assert len(sub) == 3 and sub.batch_indexable and sub[0][0] == 7 and sub[-1][0] == 5
    np.testing.assert_array_equal(sub[np.array([2, 0])][0], [5, 7])
    plain = D.Subset(PlainDataset(6), [5, 1])
    assert not plain.batch_indexable and plain[0][1] == 5
    assert [s[1] for s in plain[[1, 0]]] == [1, 5]
    with pytest.raises(IndexError):
        D.Subset(ds, [10])
    cat = ds + D.TensorDataset(np.arange(100, 103))
    assert len(cat) == 13 and cat[10][0] == 100 and cat[9][0] == 9 and cat[-1][0] == 102


@pytest.mark.parametrize("n, lengths", [(10, [0.33, 0.33, 0.34]), (7, [0.5, 0.5]), (100, [0.9, 0.1]),
                                        (5, [0.2, 0.2, 0.2, 0.2, 0.2]), (11, [0.25, 0.25, 0.25, 0.25])])
def test_random_split_fraction_lengths_match_pytorch(n, lengths):
    torch = pytest.importorskip("torch")
    expected = [len(s) for s in torch.utils.data.random_split(range(n), lengths)]
    assert [len(s) for s in D.random_split(D.TensorDataset(np.arange(n)), lengths, generator=0)] == expected


def test_random_split_partitions_reproducibly():
    ds = D.TensorDataset(np.arange(50))
    a, b, c = D.random_split(ds, [20, 25, 5], generator=3)
    parts = [np.asarray(s.indices) for s in (a, b, c)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(50))
    again = D.random_split(ds, [20, 25, 5], generator=np.random.default_rng(3))
    assert all(np.array_equal(p, q.indices) for p, q in zip(parts, again))
    assert not np.array_equal(parts[0], D.random_split(ds, [20, 25, 5], generator=4)[0].indices)
    with pytest.raises(ValueError, match="sum to 49"):
        D.random_split(ds, [20, 29])
    with pytest.raises(ValueError, match="fractions"):
        D.random_split(ds, [0.5, 0.6])
    with pytest.raises(TypeError, match="generator"):
        D.random_split(ds, [25, 25], generator="seed")


# ----------------------------------------------------------------------------- collate

def test_default_collate():
    Pair = collections.namedtuple("Pair", "x y")
    samples = [(np.full((2, 3), i, np.float32), i, float(i), np.int32(i), "s", {"k": np.ones(1) * i}, Pair(i, i))
               for i in range(4)]
    x, ints, floats, np_ints, strings, dicts, pairs = D.default_collate(samples)
    assert x.shape == (4, 2, 3) and x.dtype == np.float32 and x[3, 1, 2] == 3
    assert ints.dtype == np.int64 and ints.tolist() == [0, 1, 2, 3]
    assert floats.dtype == np.float64
    assert np_ints.dtype == np.int32
    assert strings == ["s"] * 4
    assert dicts["k"].shape == (4, 1)
    assert isinstance(pairs, Pair) and pairs.x.tolist() == [0, 1, 2, 3]
    lists = D.default_collate([[np.zeros(2), 1], [np.ones(2), 2]])
    assert isinstance(lists, list) and lists[0].shape == (2, 2)
    assert D.default_collate([True, False]).dtype == np.bool_
    with pytest.raises(ValueError, match="different shapes"):
        D.default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="same number of fields"):
        D.default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="collate_fn"):
        D.default_collate([object(), object()])


# ----------------------------------------------------------------------------- DataLoader

@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(), shuffle=st.booleans(),
       prefetch=st.booleans(), fast=st.booleans())
def test_every_sample_exactly_once_per_epoch(n, batch_size, drop_last, shuffle, prefetch, fast):
    ds = D.TensorDataset(np.arange(n) * 10, np.arange(n)) if fast else PlainDataset(n)
    loader = D.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, prefetch=prefetch, seed=1)
    expected_batches = n // batch_size if drop_last else -(-n // batch_size)
    assert len(loader) == expected_batches
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == expected_batches
        sizes = [len(y) for _, y in batches]
        assert all(s == batch_size for s in sizes[:-1])
        seen = np.concatenate([y for _, y in batches]) if batches else np.zeros(0, int)
        if drop_last:
            assert len(seen) == expected_batches * batch_size and len(set(seen.tolist())) == len(seen)
            assert set(seen.tolist()) <= set(range(n))
        else:
            assert sorted(seen.tolist()) == list(range(n))
        if not shuffle:
            assert seen.tolist() == list(range(len(seen)))
        for x, y in batches:  # fields stay together
            assert (x // 10 if fast else x[:, 0]).tolist() == y.tolist()


def test_last_partial_batch_kept_or_dropped():
    ds = D.TensorDataset(np.arange(10))
    assert [len(b[0]) for b in D.DataLoader(ds, batch_size=4)] == [4, 4, 2]
    assert [len(b[0]) for b in D.DataLoader(ds, batch_size=4, drop_last=True)] == [4, 4]
    assert len(D.DataLoader(ds, batch_size=4)) == 3 and len(D.DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert [len(b[0]) for b in D.DataLoader(ds, batch_size=5, drop_last=True)] == [5, 5]


def test_shuffle_same_seed_same_order_new_order_each_epoch():
    ds = D.TensorDataset(np.arange(100))
    a = D.DataLoader(ds, batch_size=10, shuffle=True, seed=7)
    b = D.DataLoader(ds, batch_size=10, shuffle=True, generator=np.random.default_rng(7), prefetch=False)
    epochs_a = [flat_labels_single(a) for _ in range(3)]
    epochs_b = [flat_labels_single(b) for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
        assert sorted(ea.tolist()) == list(range(100))
    assert not np.array_equal(epochs_a[0], epochs_a[1]) and not np.array_equal(epochs_a[1], epochs_a[2])
    c = D.DataLoader(ds, batch_size=10, shuffle=True, seed=8)
    assert not np.array_equal(flat_labels_single(c), epochs_a[0])
    assert not np.array_equal(epochs_a[0], np.arange(100))


def flat_labels_single(loader):
    return np.concatenate([b[0] for b in loader])


def test_global_seed_hook():
    ds = D.TensorDataset(np.arange(64))

    def run():
        loader = D.DataLoader(ds, batch_size=8, shuffle=True)
        return [flat_labels_single(loader) for _ in range(2)]

    D.seed(123)
    assert D.initial_seed() == 123
    first = run()
    D.seed(123)
    second = run()
    assert all(np.array_equal(p, q) for p, q in zip(first, second))
    D.seed(124)
    assert not np.array_equal(run()[0], first[0])
    # seeding after the loader was built restarts it too (one global generator, as in PyTorch)
    loader = D.DataLoader(ds, batch_size=8, shuffle=True)
    D.seed(123)
    e1 = flat_labels_single(loader)
    D.seed(123)
    assert np.array_equal(flat_labels_single(loader), e1)
    assert np.array_equal(e1, first[0])
    with pytest.raises(ValueError):
        D.seed(-1)
    with pytest.raises(TypeError):
        D.seed(1.5)
    assert D.seed(None) >= 0
    D.seed(0)


def test_fast_path_and_per_sample_path_agree():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (23, 6, 6, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 23)
    ds = D.ImageDataset(images, labels, transform=D.transforms.Compose(
        [D.transforms.ToTensor(), D.transforms.Normalize((0.5, 0.4, 0.3), (0.2, 0.3, 0.4))]))
    fast = list(D.DataLoader(ds, batch_size=5, shuffle=True, seed=2))
    slow = list(D.DataLoader(ds, batch_size=5, shuffle=True, seed=2, collate_fn=D.default_collate.__call__))
    assert len(fast) == len(slow) == 5
    for (xf, yf), (xs, ys) in zip(fast, slow):
        assert xf.shape == xs.shape and xf.dtype == np.float32 and yf.dtype == np.int64
        np.testing.assert_allclose(xf, xs, rtol=1e-6)
        np.testing.assert_array_equal(yf, ys)


def test_fast_path_makes_one_call_per_batch():
    class Counting(D.TensorDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    ds = Counting(np.arange(100), np.arange(100))
    assert len(list(D.DataLoader(ds, batch_size=32))) == 4
    assert Counting.calls == 4


def test_custom_collate_sampler_and_batch_sampler():
    ds = D.TensorDataset(np.arange(10))
    loader = D.DataLoader(ds, batch_size=3, collate_fn=lambda samples: [int(s[0]) * 2 for s in samples])
    assert list(loader) == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]
    loader = D.DataLoader(ds, batch_size=2, sampler=[9, 8, 7])
    assert [b[0].tolist() for b in loader] == [[9, 8], [7]]
    loader = D.DataLoader(ds, batch_sampler=[[1, 2, 3], [0]])
    assert [b[0].tolist() for b in loader] == [[1, 2, 3], [0]] and len(loader) == 2
    unbatched = list(D.DataLoader(PlainDataset(3), batch_size=None))
    assert [s[1] for s in unbatched] == [0, 1, 2] and unbatched[0][0].shape == (2,)


def test_samplers():
    ds = range(10)
    rs = D.RandomSampler(ds, generator=0)
    a, b = list(rs), list(rs)
    assert sorted(a) == list(range(10)) and a != b
    rep = list(D.RandomSampler(ds, replacement=True, num_samples=50, generator=1))
    assert len(rep) == 50 and set(rep) <= set(range(10)) and len(set(rep)) < 50
    more = list(D.RandomSampler(ds, num_samples=25, generator=1))
    assert len(more) == 25 and sorted(more[:10]) == list(range(10))
    sub = list(D.SubsetRandomSampler([3, 5, 7], generator=0))
    assert sorted(sub) == [3, 5, 7]
    bs = D.BatchSampler(D.SequentialSampler(ds), 4, drop_last=False)
    assert list(bs) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(bs) == 3
    assert len(D.BatchSampler(D.SequentialSampler(ds), 4, drop_last=True)) == 2


def test_argument_errors():
    ds = D.TensorDataset(np.arange(5))
    for kwargs, err, phrase in [({"batch_size": 0}, ValueError, "batch_size"),
                                ({"batch_size": 2.0}, ValueError, "batch_size"),
                                ({"shuffle": True, "sampler": [0]}, ValueError, "mutually exclusive"),
                                ({"batch_sampler": [[0]], "batch_size": 2}, ValueError, "batch_sampler"),
                                ({"seed": 1, "generator": 2}, ValueError, "either"),
                                ({"num_workers": -1}, ValueError, "num_workers"),
                                ({"prefetch_factor": 0}, ValueError, "prefetch_factor"),
                                ({"drop_last": 1}, TypeError, "drop_last"),
                                ({"collate_fn": 3}, TypeError, "collate_fn"),
                                ({"shuffle": True, "generator": "x"}, TypeError, "generator")]:
        with pytest.raises(err, match=phrase):
            D.DataLoader(ds, **kwargs)
    with pytest.raises(TypeError, match="__len__"):
        D.DataLoader(5)


# ----------------------------------------------------------------------------- prefetch thread

def test_prefetch_runs_in_a_background_thread_ahead_of_the_consumer():
    ds = PlainDataset(40)
    it = iter(D.DataLoader(ds, batch_size=4, prefetch_factor=2))
    first = next(it)
    assert first[1].tolist() == [0, 1, 2, 3]
    deadline = time.time() + 5
    while len(ds.fetched) < 8 and time.time() < deadline:  # batch 1 is made before we ask for it
        time.sleep(0.005)
    assert len(ds.fetched) >= 8
    time.sleep(0.1)
    # bounded queue: at most prefetch_factor batches waiting + one being made
    assert len(ds.fetched) <= 4 * (1 + 2 + 1)
    assert ds.threads == {"tinygrad_cnn-DataLoader-prefetch"}
    assert [b[1][0] for b in it] == list(range(4, 40, 4))


def test_prefetch_thread_stops_after_break_and_exhaustion():
    baseline = threading.active_count()
    ds = D.TensorDataset(np.arange(1000))
    loader = D.DataLoader(ds, batch_size=2, prefetch_factor=3)
    for _ in range(3):
        for k, _ in enumerate(loader):
            if k == 5:
                break
        assert wait_for_threads(baseline) == baseline
    list(loader)
    assert wait_for_threads(baseline) == baseline
    it = iter(loader)
    next(it)
    it.close()
    assert threading.active_count() == baseline
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize("prefetch", [True, False])
def test_errors_in_loading_are_reraised_in_the_main_thread(prefetch):
    baseline = threading.active_count()
    loader = D.DataLoader(PlainDataset(20, fail_at=9), batch_size=4, prefetch=prefetch)
    got = []
    with pytest.raises(KeyError, match="sample 9 is broken") as info:
        for x, y in loader:
            got.append(y)
    assert [y.tolist() for y in got] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    if prefetch:
        assert "prefetch thread" in "".join(getattr(info.value, "__notes__", ["prefetch thread"]))
    assert wait_for_threads(baseline) == baseline


def test_prefetch_and_synchronous_give_identical_epochs_with_augmentation():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    T = D.transforms

    def epochs(prefetch):
        tf = T.Compose([T.RandomCrop(8, padding=2, generator=5), T.RandomHorizontalFlip(generator=6), T.ToTensor()])
        ds = D.ImageDataset(images, np.arange(30), transform=tf)
        loader = D.DataLoader(ds, batch_size=7, shuffle=True, seed=4, prefetch=prefetch)
        return [np.concatenate([x for x, _ in loader]) for _ in range(2)]

    a, b = epochs(True), epochs(False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("prefetch", [True, False])
def test_seedless_augmentation_follows_the_global_seed(prefetch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    T = D.transforms

    def run(seed, prefetch):
        D.seed(seed)
        ds = D.ImageDataset(images, np.arange(30), transform=T.Compose(
            [T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.ToTensor()]))
        loader = D.DataLoader(ds, batch_size=7, shuffle=True, prefetch=prefetch)
        return [(np.concatenate([x for x, _ in loader]), np.concatenate([y for _, y in loader])) for _ in range(2)]

    a, b, c = run(11, prefetch), run(11, not prefetch), run(12, prefetch)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])
    D.seed(0)


def test_getitems_protocol_is_used_for_per_sample_datasets():
    class Batched(PlainDataset):
        calls = []

        def __getitems__(self, indices):
            Batched.calls.append(list(indices))
            return [self[i] for i in indices]

    out = list(D.DataLoader(Batched(5), batch_size=2))
    assert Batched.calls == [[0, 1], [2, 3], [4]] and out[2][1].tolist() == [4]


def test_data_package_imports_only_numpy_and_the_standard_library():
    """The layering rule: tinygrad_cnn.data never sees a Tensor (numpy, stdlib, optional tqdm)."""
    import ast
    import pathlib
    folder = pathlib.Path(D.__file__).parent
    allowed = {"numpy", "tqdm", "__future__", "collections", "contextlib", "gzip", "hashlib", "http", "io", "math",
               "numbers", "os", "pathlib", "pickle", "queue", "shutil", "sys", "tarfile", "tempfile", "threading",
               "typing", "urllib", "zlib", "itertools", "struct"}
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
