"""Checkpoints: bit-exact round trips, PyTorch interop via safetensors, hostile files, atomic writes."""
import os
import pickle
import struct
import sys
from collections import Counter, OrderedDict

import numpy as np
import pytest
import safetensors.torch as safetensors_torch
import torch

import tinygrad_cnn as tc
import tinygrad_cnn.io as tio
import tinygrad_cnn.nn as nn
import tinygrad_cnn.optim as optim


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny ops: torch's threads only add contention. Restored afterwards for other files."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _model(n):
    return n.Sequential(n.Conv2d(2, 3, 3, padding=1), n.BatchNorm2d(3), n.ReLU(), n.MaxPool2d(2),
                        n.Flatten(), n.Linear(3 * 2 * 2, 4))


X = np.random.default_rng(0).standard_normal((5, 2, 4, 4)).astype(np.float32)


def _trained():
    tc.manual_seed(0)
    m = _model(nn)
    opt = optim.Adam(m.parameters(), lr=0.01, amsgrad=True)
    sch = optim.lr_scheduler.MultiStepLR(opt, [1, 3])
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt)
    for _ in range(3):
        opt.zero_grad()
        m(tc.Tensor(X)).sum().backward()
        opt.step()
        sch.step()
    return m, opt, sch, plateau


@pytest.mark.parametrize("ext", [".safetensors", ".npz", ".ckpt"])
def test_round_trip_is_bit_exact(tmp_path, ext):
    m, opt, sch, plateau = _trained()
    ck = {"model": m.state_dict(), "optimizer": opt.state_dict(), "scheduler": sch.state_dict(),
          "plateau": plateau.state_dict(), "epoch": 7, "note": "best", "misc": (1, 2.5, None, True, [float("nan")]),
          "array": np.arange(6, dtype=np.int32).reshape(2, 3), 3: "int key"}
    path = tmp_path / ("ck" + ext)
    tc.save(ck, path)
    back = tc.load(path)
    assert set(back) == set(ck) and back["epoch"] == 7 and back["note"] == "best" and back[3] == "int key"
    assert back["misc"][:4] == (1, 2.5, None, True) and np.isnan(back["misc"][4][0])
    assert isinstance(back["array"], np.ndarray) and np.array_equal(back["array"], ck["array"])
    assert back["array"].dtype == np.int32
    assert isinstance(back["model"], OrderedDict) and list(back["model"]) == list(ck["model"])
    for k, v in ck["model"].items():
        assert back["model"][k].dtype == v.dtype and back["model"][k].shape == v.shape
        assert np.array_equal(back["model"][k].data, v.data), k
    assert back["model"]["1.num_batches_tracked"].shape == ()       # 0-d stays 0-d
    assert isinstance(back["scheduler"]["milestones"], Counter)
    assert back["plateau"]["best"] == float("inf")
    assert list(back["optimizer"]["state"]) == list(ck["optimizer"]["state"])   # int keys stay ints
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)

    # a fresh model + optimizer restored from the file reproduce outputs and next steps exactly
    m2 = _model(nn)
    m2.load_state_dict(back["model"])
    opt2 = optim.Adam(m2.parameters(), lr=0.01, amsgrad=True)
    opt2.load_state_dict(back["optimizer"])
    m.eval()
    m2.eval()
    assert np.array_equal(m(tc.Tensor(X)).data, m2(tc.Tensor(X)).data)
    m.train()
    m2.train()
    for mm, oo in ((m, opt), (m2, opt2)):
        oo.zero_grad()
        mm(tc.Tensor(X)).sum().backward()
        oo.step()
    for (k, v), (_, u) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert np.array_equal(v.data, u.data), k


def test_torch_safetensors_file_loads_into_our_model(tmp_path):
    theirs = _model(torch.nn)
    theirs.train()
    theirs(torch.tensor(X))             # non-trivial running stats
    theirs.eval()
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(theirs.state_dict(), str(path))
    ours = _model(nn)
    sd = tc.load(path)
    assert set(sd) == set(theirs.state_dict())
    ours.load_state_dict(sd)
    ours.eval()
    np.testing.assert_allclose(ours(tc.Tensor(X)).data, theirs(torch.tensor(X)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_our_file_loads_into_torch(tmp_path):
    ours, _, _, _ = _trained()
    ours.eval()
    path = tmp_path / "ours.safetensors"
    tc.save(ours.state_dict(), path)
    theirs = _model(torch.nn)
    sd = safetensors_torch.load_file(str(path))
    assert list(sd) != [] and set(sd) == set(ours.state_dict())
    theirs.load_state_dict(sd)
    theirs.eval()
    np.testing.assert_allclose(ours(tc.Tensor(X)).data, theirs(torch.tensor(X)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    assert sd["1.num_batches_tracked"].dtype == torch.int64


def test_pickle_payload_is_rejected_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    for name in ("evil.safetensors", "evil.pt", "evil.npz"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps({"w": Evil()}))
        with pytest.raises(tio.CheckpointError, match="pickle"):
            tc.load(path)
        assert not marker.exists()
    # torch.save's zip-of-pickles format is refused too
    path = tmp_path / "model.pt"
    torch.save(_model(torch.nn).state_dict(), str(path))
    with pytest.raises(tio.CheckpointError, match="unpickle"):
        tc.load(path)


def test_npz_with_object_arrays_is_rejected(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(tio.CheckpointError, match="pickled"):
        tc.load(path)


def test_truncated_and_lying_files_raise_clear_errors(tmp_path):
    m, _, _, _ = _trained()
    good = tmp_path / "good.safetensors"
    tc.save(m.state_dict(), good)
    blob = good.read_bytes()
    for cut, pattern in [(4, "truncated"), (len(blob) // 3, "truncated"), (len(blob) - 3, "truncated")]:
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(blob[:cut])
        with pytest.raises(tio.CheckpointError, match=pattern):
            tc.load(bad)
    # a header that claims far more bytes than the file has
    liar = tmp_path / "liar.safetensors"
    liar.write_bytes(struct.pack("<Q", 10**12) + blob[8:])
    with pytest.raises(tio.CheckpointError, match="claims"):
        tc.load(liar)
    # a well-formed header whose tensor points past the end of the data
    header = b'{"w":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}'
    liar.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(tio.CheckpointError, match="claims bytes \\[0, 4000\\)"):
        tc.load(liar)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 5) + b"nope!")
    with pytest.raises(tio.CheckpointError, match="not a valid safetensors"):
        tc.load(garbage)
    npz = tmp_path / "good.npz"
    tc.save(m.state_dict(), npz)
    nb = npz.read_bytes()
    (tmp_path / "cut.npz").write_bytes(nb[: len(nb) // 2])
    with pytest.raises(tio.CheckpointError, match="truncated"):
        tc.load(tmp_path / "cut.npz")


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_crash_mid_write_keeps_the_old_checkpoint(tmp_path, monkeypatch, ext):
    path = tmp_path / ("ck" + ext)
    old = {"w": tc.ones(3)}
    tc.save(old, path)
    before = path.read_bytes()

    real_fsync = os.fsync

    def crash(fd):
        raise OSError("simulated power cut during fsync")
    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="power cut"):
        tc.save({"w": tc.zeros(1000)}, path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == before                     # the old checkpoint is intact
    assert sorted(os.listdir(tmp_path)) == [path.name]     # and no temporary file is left behind
    np.testing.assert_array_equal(tc.load(path)["w"].data, np.ones(3, dtype=np.float32))

    # a crash inside the serializer, half-way through writing the bytes
    def half_write(f):
        f.write(b"partial")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        tio._atomic_write(path, half_write)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == [path.name]


def test_save_rejects_objects_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="cannot store an object of type"):
        tc.save({"f": lambda: 0}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="state_dict"):
        tc.save(nn.Linear(2, 2), tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="dtype"):
        tc.save({"s": np.array(["a"])}, tmp_path / "x.safetensors")
    assert not os.listdir(tmp_path)


def test_missing_safetensors_gives_a_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_cnn\[io\]'"):
        tc.save({"w": tc.ones(2)}, tmp_path / "x.safetensors")
    tc.save({"w": tc.ones(2)}, tmp_path / "x.npz")          # npz needs only NumPy
    assert tc.load(tmp_path / "x.npz")["w"].shape == (2,)


def test_plain_npz_of_arrays_loads_as_state_dict(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weight=np.ones((2, 3), dtype=np.float32), bias=np.zeros(2, dtype=np.float32))
    sd = tc.load(path)
    lin = nn.Linear(3, 2)
    lin.load_state_dict(sd)
    assert (lin.weight.data == 1).all()
