"""Reading the official dataset formats from tiny generated files: IDX (gz and raw),
CIFAR-10 binary and python layouts, the search path, and the restricted unpickler."""
import gzip
import os
import pickle
import struct

import numpy as np
import pytest

import tinygrad_cnn.data as D
from tinygrad_cnn.data import download as dl
from tinygrad_cnn.data.formats import parse_idx


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $TINYGRAD_CNN_DATA, a private cache, and no system dataset folder."""
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(dl, "SYSTEM_DATA_DIR", tmp_path / "system")
    return tmp_path


def make_mnist(folder, seed=0, n_train=12, n_test=5, gz=True, h=28, w=28, stems=("train", "t10k"), sep="-"):
    """Write the four MNIST IDX files; returns {"train": (images, labels), "test": (...)}."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", stems[0], n_train), ("test", stems[1], n_test)):
        images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        D.write_idx(os.path.join(folder, f"{prefix}-images{sep}idx3-ubyte{suffix}"), images)
        D.write_idx(os.path.join(folder, f"{prefix}-labels{sep}idx1-ubyte{suffix}"), labels)
        out[split] = (images, labels.astype(np.int64))
    return out


def make_cifar(folder, seed=0, per_batch=4, layouts=("bin", "py"), protocol=4):
    """Write tiny cifar-10-batches-bin/ and/or -py/ under folder; returns train/test arrays (N,32,32,3)."""
    rng = np.random.default_rng(seed)
    batches = {}
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).astype(np.int64)
        batches[name] = (images, labels)
        if "bin" in layouts:
            os.makedirs(os.path.join(folder, "cifar-10-batches-bin"), exist_ok=True)
            D.write_cifar_bin(os.path.join(folder, "cifar-10-batches-bin", name + ".bin"), images, labels)
        if "py" in layouts:
            os.makedirs(os.path.join(folder, "cifar-10-batches-py"), exist_ok=True)
            batch = {b"batch_label": name.encode(), b"labels": labels.tolist(),
                     b"data": images.transpose(0, 3, 1, 2).reshape(per_batch, -1),
                     b"filenames": [b"x.png"] * per_batch}
            with open(os.path.join(folder, "cifar-10-batches-py", name), "wb") as f:
                pickle.dump(batch, f, protocol=protocol)
    train = tuple(np.concatenate([batches[f"data_batch_{k}"][i] for k in range(1, 6)]) for i in range(2))
    return {"train": train, "test": batches["test_batch"]}


# ----------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8", "<f4", "<i4"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / ("a.idx" + (".gz" if gz else ""))
    D.write_idx(path, array)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == gz
    back = D.read_idx(path)
    assert back.shape == (3, 4, 5) and back.dtype.kind == np.dtype(dtype).kind
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_documented_layout(tmp_path):
    D.write_idx(tmp_path / "x", np.arange(6, dtype=np.uint8).reshape(2, 3))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x02" and struct.unpack(">II", raw[4:12]) == (2, 3) and raw[12:] == bytes(range(6))


@pytest.mark.parametrize("raw, phrase", [
    (b"", "too short"),
    (b"\x89PNG\r\n\x1a\n", "not an IDX file"),
    (b"\x00\x00\x07\x01" + b"\x00" * 8, "not an IDX file"),       # unknown type code
    (b"\x00\x00\x08\x00", "not an IDX file"),                      # zero dimensions
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05" + b"\x01\x02", "truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x02" + b"\x01\x02\x03", "too long"),
])
def test_idx_structural_errors_name_the_file(raw, phrase):
    with pytest.raises(D.DatasetFormatError, match=phrase) as info:
        parse_idx(raw, "some/file-idx")
    assert "some/file-idx" in str(info.value)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    D.write_idx(path, np.zeros((4, 28, 28), np.uint8) + 7)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(D.DatasetFormatError, match="gzip") as info:
        D.read_idx(path)
    assert str(path) in str(info.value)


def test_mnist_file_kind_checks(isolated):
    folder = isolated / "root" / "mnist"
    make_mnist(folder)
    # a labels file where the images file should be
    os.replace(folder / "train-labels-idx1-ubyte.gz", folder / "train-images-idx3-ubyte.gz")
    D.write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(12, np.uint8))
    with pytest.raises(D.DatasetFormatError, match="0x00000803") as info:
        D.MNIST(isolated / "root")
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_mnist_count_mismatch_and_bad_labels(isolated):
    folder = isolated / "root" / "mnist"
    make_mnist(folder)
    D.write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(D.DatasetFormatError, match="12 images but .* 11 labels"):
        D.MNIST(isolated / "root")
    D.write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(12, 10, np.uint8))
    with pytest.raises(D.DatasetFormatError, match="label 10"):
        D.MNIST(isolated / "root")


# ----------------------------------------------------------------------------- MNIST datasets

@pytest.mark.parametrize("layout", ["subfolder-gz", "direct-raw", "torchvision", "dotted-names"])
def test_mnist_layouts(isolated, layout):
    root = isolated / "root"
    if layout == "subfolder-gz":
        arrays = make_mnist(root / "mnist", gz=True)
    elif layout == "direct-raw":
        arrays = make_mnist(root, gz=False)
    elif layout == "torchvision":
        arrays = make_mnist(root / "MNIST" / "raw", gz=False)
    else:
        arrays = make_mnist(root / "mnist", sep=".")
    for train, split in ((True, "train"), (False, "test")):
        ds = D.MNIST(root=str(root), train=train)
        images, labels = arrays[split]
        assert len(ds) == len(images)
        assert ds.data.dtype == np.uint8 and ds.data.shape == images.shape
        np.testing.assert_array_equal(ds.data, images)
        assert ds.targets.dtype == np.int64
        np.testing.assert_array_equal(ds.targets, labels)
        x, y = ds[3]
        assert x.dtype == np.float32 and x.shape == (1, 28, 28) and isinstance(y, int) and y == labels[3]
        np.testing.assert_allclose(x[0], images[3] / 255.0, rtol=1e-6)
        xb, yb = ds[np.array([4, 0, 4])]
        assert xb.shape == (3, 1, 28, 28) and yb.dtype == np.int64
        np.testing.assert_array_equal(xb[1], ds[0][0])
        np.testing.assert_array_equal(yb, labels[[4, 0, 4]])
        xa, ya = ds.arrays()
        assert xa.shape == (len(images), 1, 28, 28)


def test_fashion_mnist_reads_its_own_folder(isolated):
    root = isolated / "root"
    mnist = make_mnist(root / "mnist", seed=1)
    fashion = make_mnist(root / "fashion-mnist", seed=2)
    np.testing.assert_array_equal(D.FashionMNIST(root, train=False).data, fashion["test"][0])
    np.testing.assert_array_equal(D.MNIST(root, train=False).data, mnist["test"][0])
    assert D.FashionMNIST.classes[9] == "Ankle boot"


def test_search_order_root_env_cache_system(isolated, monkeypatch):
    places = {"root": isolated / "root", "env": isolated / "env", "cache": isolated / "xdg" / "tinygrad_cnn",
              "system": isolated / "system"}
    sets = {name: make_mnist(path / "mnist", seed=k, n_train=3 + k)
            for k, (name, path) in enumerate(places.items())}
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(places["env"]))

    def source(root):
        return len(D.MNIST(root=root))

    assert source(places["root"]) == 3
    assert source(None) == 4  # env
    monkeypatch.delenv("TINYGRAD_CNN_DATA")
    assert source(None) == 5  # cache
    assert D.MNIST().folder == places["cache"] / "mnist"
    import shutil
    shutil.rmtree(places["cache"])
    ds = D.MNIST()
    assert len(ds) == 6 and ds.folder == places["system"] / "mnist"
    np.testing.assert_array_equal(ds.data, sets["system"]["train"][0])
    # a root without the files falls through to the other places
    assert source(isolated / "empty") == 6


def test_env_var_may_list_several_folders(isolated, monkeypatch):
    make_mnist(isolated / "b" / "mnist", n_train=7)
    monkeypatch.setenv("TINYGRAD_CNN_DATA", os.pathsep.join([str(isolated / "a"), str(isolated / "b")]))
    assert len(D.MNIST()) == 7


def test_not_found_message_says_where_and_how(isolated):
    (isolated / "root" / "mnist").mkdir(parents=True)
    (isolated / "root" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(D.DatasetNotFoundError) as info:
        D.MNIST(root=isolated / "root")
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for needle in [str(isolated / "root" / "mnist"), "exists but is incomplete", "$TINYGRAD_CNN_DATA",
                   "--data-dir", "download=True", str(isolated / "xdg" / "tinygrad_cnn" / "mnist"),
                   str(isolated / "system" / "mnist"), "train-labels-idx1-ubyte"]:
        assert needle in msg, needle
    with pytest.raises(D.DatasetNotFoundError, match="apt install dataset-fashion-mnist"):
        D.FashionMNIST()


def test_constructor_argument_checks(isolated):
    make_mnist(isolated / "mnist")
    with pytest.raises(TypeError, match="train"):
        D.MNIST(isolated, train="yes")
    ds = D.MNIST(isolated)
    with pytest.raises(IndexError, match="out of range"):
        ds[12]
    with pytest.raises(TypeError, match="index"):
        ds[1.5]
    assert ds[-1][1] == ds.targets[-1]


def test_real_mnist_through_env_var(monkeypatch):
    """Extra: the shared copy of the real MNIST, read exactly like a user's download."""
    shared = "/work/shared/datasets"
    if not os.path.isdir(os.path.join(shared, "mnist")):
        pytest.skip("no shared MNIST copy on this machine")
    monkeypatch.setenv("TINYGRAD_CNN_DATA", shared)
    ds = D.MNIST(train=False)
    assert ds.data.shape == (10000, 28, 28) and np.bincount(ds.targets).sum() == 10000
    train = D.MNIST(train=True)
    header = b"\x00\x00\x08\x03" + struct.pack(">III", 60000, 28, 28)
    import hashlib
    assert hashlib.md5(header + train.data.tobytes()).hexdigest() == "6bbc9ace898e44ae57da46a324031adb"


# ----------------------------------------------------------------------------- CIFAR-10

@pytest.mark.parametrize("layouts", [("bin",), ("py",), ("bin", "py")])
def test_cifar_layouts(isolated, layouts):
    root = isolated / "root"
    arrays = make_cifar(root, layouts=layouts)
    for train, split in ((True, "train"), (False, "test")):
        ds = D.CIFAR10(root, train=train)
        assert ds.format == layouts[0]  # the binary layout is preferred when both exist
        images, labels = arrays[split]
        assert ds.data.shape == (len(images), 32, 32, 3) and ds.data.dtype == np.uint8
        np.testing.assert_array_equal(ds.data, images)
        np.testing.assert_array_equal(ds.targets, labels)
        x, y = ds[2]
        assert x.shape == (3, 32, 32) and x.dtype == np.float32 and y == labels[2]
        np.testing.assert_allclose(x, images[2].transpose(2, 0, 1) / 255.0, rtol=1e-6)


def test_cifar_files_directly_in_root_and_in_env(isolated, monkeypatch):
    arrays = make_cifar(isolated / "a", layouts=("py",))
    np.testing.assert_array_equal(D.CIFAR10(isolated / "a" / "cifar-10-batches-py", train=False).data,
                                  arrays["test"][0])
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(isolated / "a"))
    assert len(D.CIFAR10()) == 20


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_python_layout_all_pickle_protocols(isolated, protocol):
    arrays = make_cifar(isolated, layouts=("py",), protocol=protocol)
    np.testing.assert_array_equal(D.CIFAR10(isolated, train=True).data, arrays["train"][0])


def test_cifar_binary_record_length_and_label_checks(isolated):
    make_cifar(isolated, layouts=("bin",))
    path = isolated / "cifar-10-batches-bin" / "test_batch.bin"
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])
    with pytest.raises(D.DatasetFormatError, match="3073") as info:
        D.CIFAR10(isolated, train=False)
    assert str(path) in str(info.value)
    bad = bytearray(raw)
    bad[3073] = 37  # label of record 1
    path.write_bytes(bytes(bad))
    with pytest.raises(D.DatasetFormatError, match="record 1 has label 37"):
        D.CIFAR10(isolated, train=False)
    path.write_bytes(b"")
    with pytest.raises(D.DatasetFormatError, match="not a whole number"):
        D.CIFAR10(isolated, train=False)


def test_cifar_python_structure_checks(isolated):
    make_cifar(isolated, layouts=("py",))
    path = isolated / "cifar-10-batches-py" / "test_batch"
    cases = [({b"labels": [1]}, "no 'data'"),
             ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, "uint8"),
             ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "2 integers"),
             ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [11]}, "0..9"),
             ([1, 2, 3], "pickled dict")]
    for obj, phrase in cases:
        path.write_bytes(pickle.dumps(obj, protocol=4))
        with pytest.raises(D.DatasetFormatError, match=phrase):
            D.CIFAR10(isolated, train=False)
    path.write_bytes(pickle.dumps({b"data": 1}, protocol=4)[:-5])
    with pytest.raises(D.DatasetFormatError, match="not a valid pickle"):
        D.CIFAR10(isolated, train=False)


# ----------------------------------------------------------------------------- restricted unpickler

class _Evil:
    """Unpickling this with plain pickle calls `fn(*args)`."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _evil_batch(payload):
    return pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [payload]}, protocol=2)


def test_malicious_pickle_in_cifar_batch_is_refused_and_not_executed(isolated):
    make_cifar(isolated, layouts=("py",))
    marker = isolated / "pwned"
    blob = _evil_batch(_Evil(os.system, f"touch {marker}"))
    (isolated / "cifar-10-batches-py" / "test_batch").write_bytes(blob)
    with pytest.raises(D.UnsafePickleError, match="system") as info:
        D.CIFAR10(isolated, train=False)
    assert "test_batch" in str(info.value)
    assert isinstance(info.value, pickle.UnpicklingError) and isinstance(info.value, D.DatasetFormatError)
    assert not marker.exists()


def test_the_malicious_payload_really_runs_under_plain_pickle(tmp_path):
    """So the refusal tests above can fail: plain pickle.loads does execute the payload."""
    marker = tmp_path / "opened"
    blob = _evil_batch(_Evil(open, str(marker), "w"))
    with pytest.raises(D.UnsafePickleError, match=r"io\.open"):
        D.safe_unpickle(blob)
    assert not marker.exists()
    pickle.loads(blob)[b"labels"][0].close()
    assert marker.exists()


@pytest.mark.parametrize("obj", [
    _Evil(eval, "1+1"),
    _Evil(getattr, np.ndarray, "tofile"),
    _Evil(np.load, "x.npy"),
    np.array([1, "x"], dtype=object),
    np.ma.masked_array([1, 2], mask=[0, 1]),
    np.zeros(2, dtype=[("a", "u1"), ("b", "f4")]),
    np.datetime64("2020-01-01"),
    {1, 2},
    _Evil,
])
def test_safe_unpickle_refuses_anything_but_plain_data(obj):
    for protocol in (2, 4, 5):
        with pytest.raises(D.UnsafePickleError):
            D.safe_unpickle(pickle.dumps({b"x": obj}, protocol=protocol))


def test_safe_unpickle_accepts_plain_data_in_all_protocols():
    obj = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), "f": np.asfortranarray(np.ones((2, 3))),
           "big": np.arange(5, dtype=">i4"), "s": np.float32(2.5), "n": [1, 2.0, None, True, "x", b"y", (3,)],
           "bool": np.array([True, False])}
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        back = D.safe_unpickle(pickle.dumps(obj, protocol=protocol))
        assert set(back) == set(obj)
        for key in (b"data", "f", "big", "bool"):
            np.testing.assert_array_equal(back[key], obj[key])
            assert back[key].dtype.newbyteorder("=") == obj[key].dtype.newbyteorder("=")
        assert back["s"] == np.float32(2.5) and back["n"] == obj["n"]


def _py2_cifar_pickle(data, labels):
    """Hand-assembled Python-2 cPickle (protocol 2) of a CIFAR batch, as in the official
    cifar-10-python.tar.gz: str keys/bytes are BINSTRINGs, numpy lives in numpy.core."""
    def s(b):
        return b"U" + bytes([len(b)]) + b
    n = data.shape[0]
    dtype = (b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R" +
             b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R" +
             b"(K\x01K" + bytes([n]) + b"M\x00\x0c\x86" + dtype + b"\x89T" +
             struct.pack("<I", data.nbytes) + data.tobytes() + b"tb")
    label_list = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return b"\x80\x02}(" + s(b"data") + array + s(b"labels") + label_list + b"u."


def test_python2_cifar_pickle(isolated):
    make_cifar(isolated, layouts=("py",))
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    blob = _py2_cifar_pickle(data, [3, 1, 4])
    reference = pickle.loads(blob, encoding="latin1")  # what torchvision does: proves the blob is valid
    np.testing.assert_array_equal(reference["data"], data)
    (isolated / "cifar-10-batches-py" / "test_batch").write_bytes(blob)
    ds = D.CIFAR10(isolated, train=False)
    np.testing.assert_array_equal(ds.data, data.reshape(3, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(ds.targets, [3, 1, 4])


def test_read_cifar_python_layout_of_real_builder_format(tmp_path):
    """The exact dict layout written by build_cifar10.py / the official archive."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [0, 9, 3, 3, 1], b"data": data,
             b"filenames": [b"a.png"] * 5}
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(batch, protocol=4))
    images, labels = D.read_cifar_pickle(path)
    np.testing.assert_array_equal(images[1, 4, 7], data[1].reshape(3, 32, 32)[:, 4, 7])
    np.testing.assert_array_equal(labels, [0, 9, 3, 3, 1])
