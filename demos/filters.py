"""Curriculum topic 6: what the first layer learns -- pictures of filters and activation maps.

    python demos/filters.py --data-dir ../shared/datasets --train-steps 300        # train LeNet-5, then look
    python demos/filters.py --weights runs/mnist/checkpoint.safetensors --model lenet5
    python demos/filters.py --weights alexnet.safetensors --model alexnet          # 64 filters of 3x11x11
    python demos/filters.py --weights any_state_dict.npz                           # filters only

First-layer filters are local image templates: after training they look like oriented edges,
blobs and (for colour inputs) colour contrasts, like AlexNet's 64 filters of 3x11x11 on the slide.

Where the weights come from:
* ``--weights FILE`` (a state dict or a checkpoint from ``tinygrad_cnn.save``; ``.safetensors`` or
  ``.npz``, e.g. torchvision weights converted once as docs/models.md shows). With ``--model NAME``
  (any ``tinygrad_cnn.models`` constructor) the weights are loaded into that model and the
  activation maps of one input are drawn too; without it, the first 4-D weight in the file (or
  ``--key``) is drawn.
* no ``--weights``: a LeNet-5 is trained for ``--train-steps`` steps on MNIST (``--data-dir``) or on
  generated data (``--synthetic``), and its filters are drawn before and after training.

Files (in --out): filters.png (and filters_initial.png when training), activations.png (the
first layers' outputs for one input, when a model is known), and trained.safetensors when
training (reuse it with --weights ... --model lenet5).
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import models, optim
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach.pictures import activation_maps, has_matplotlib, save_activation_maps, save_filter_grid


def flatten_checkpoint(obj, prefix: str = "") -> dict:
    """A flat ``{dotted name: array}`` from a state dict or a checkpoint nest ({"model": {...}, ...})."""
    if isinstance(obj, dict):
        if "model" in obj and isinstance(obj["model"], dict):        # prefer the model part of a checkpoint
            return flatten_checkpoint(obj["model"], prefix)
        out = {}
        for k, v in obj.items():
            out.update(flatten_checkpoint(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, (tc.Tensor, np.ndarray)):
        return {prefix[:-1]: np.asarray(getattr(obj, "data", obj))}
    return {}


def first_conv_weight(state: dict, key=None):
    if key is not None:
        if key not in state:
            raise SystemExit(f"--key {key!r} is not in the file; 4-D weights there: "
                             f"{[k for k, v in state.items() if v.ndim == 4]}")
        return key, state[key]
    for k, v in state.items():
        if v.ndim == 4 and k.endswith("weight"):
            return k, v
    raise SystemExit("no 4-D conv weight (C_out, C_in, kH, kW) found in the file")


def one_input(model_name: str, in_channels: int, size: int, args):
    """An image to look at: an MNIST test digit when possible, else a drawn pattern."""
    if in_channels == 1 and not args.synthetic:
        try:
            from tinygrad_cnn.data import MNIST
            ds = MNIST(root=args.data_dir, train=False)
            img = ds.data[0].astype(np.float32) / 255.0
            return ((img - 0.1307) / 0.3081)[None, None], f"MNIST test digit {int(ds.targets[0])}"
        except Exception as e:                # no data: fall back to a drawing
            print(f"(no MNIST test image: {type(e).__name__}; using a drawn pattern)")
    if in_channels == 3 and size == 32 and not args.synthetic:
        try:
            from tinygrad_cnn.data import CIFAR10
            ds = CIFAR10(root=args.data_dir, train=False)
            img = ds.data[0].astype(np.float32).transpose(2, 0, 1) / 255.0          # (3, 32, 32)
            mean = np.array([0.4914, 0.4822, 0.4465], np.float32)[:, None, None]
            std = np.array([0.2470, 0.2435, 0.2616], np.float32)[:, None, None]
            return ((img - mean) / std)[None], f"CIFAR-10 test image ({ds.classes[int(ds.targets[0])]})"
        except Exception as e:
            print(f"(no CIFAR-10 test image: {type(e).__name__}; using a drawn pattern)")
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    pattern = np.stack([np.sin(12 * xx) > 0, ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) < 0.1, yy > 0.6])
    return pattern[:in_channels].astype(np.float32)[None], "a drawn test pattern"


def train_lenet(args):
    """A LeNet-5 trained for a few steps: on MNIST, or on generated data with --synthetic."""
    tc.manual_seed(args.seed)
    net = models.lenet5()
    initial = net.features[0].weight.detach().numpy().copy()
    if args.synthetic:
        rng = np.random.default_rng(args.seed)
        x_all = rng.normal(size=(256, 1, 28, 28)).astype(np.float32)
        y_all = rng.integers(0, 10, 256)
    else:
        from tinygrad_cnn.data import MNIST
        ds = MNIST(root=args.data_dir, train=True)
        x_all = ((ds.data.astype(np.float32) / 255.0 - 0.1307) / 0.3081)[:, None]
        y_all = ds.targets
    opt = optim.Adam(net.parameters(), lr=2e-3)
    rng = np.random.default_rng(args.seed)
    for step in range(args.train_steps):
        idx = rng.integers(0, len(x_all), args.batch_size)
        loss = F.cross_entropy(net(tc.Tensor(x_all[idx])), tc.Tensor(y_all[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0 or step + 1 == args.train_steps:
            print(f"  step {step + 1}/{args.train_steps}  loss {loss.item():.3f}")
    return net, initial


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="a state dict / checkpoint file (.safetensors or .npz)")
    p.add_argument("--model", help="a tinygrad_cnn.models name, e.g. lenet5, resnet20, alexnet "
                                   f"({len(models.list_models())} known)")
    p.add_argument("--num-classes", type=int, default=None, help="of --model (default: from the weights)")
    p.add_argument("--key", help="which 4-D weight to draw (default: the first conv weight)")
    p.add_argument("--layers", default=None, help="comma-separated module names for the activation maps")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ (default: $TINYGRAD_CNN_DATA, the cache)")
    p.add_argument("--synthetic", action="store_true", help="train on generated data (no MNIST needed)")
    p.add_argument("--train-steps", type=int, default=300, help="when no --weights: LeNet-5 training steps")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/filters", help="folder for the pictures (default: %(default)s)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if not has_matplotlib():
        raise SystemExit("demos/filters.py draws pictures and needs matplotlib: pip install matplotlib")

    model, written = None, []
    if args.weights:
        state = flatten_checkpoint(tc.load(args.weights))
        if args.model:
            kwargs = {}
            heads = [v for k, v in state.items() if v.ndim == 2 and k.endswith("weight")]
            if args.num_classes or heads:
                kwargs["num_classes"] = args.num_classes or int(heads[-1].shape[0])
            model = models.get_model(args.model, **kwargs)
            report = models.load_weights(model, state)
            print(report)
            conv = models.first_conv(model)
            key, weight = "first conv of " + args.model, conv.weight.detach().numpy()
        else:
            key, weight = first_conv_weight(state, args.key)
    else:
        source = "generated data" if args.synthetic else "MNIST"
        print(f"No --weights: training LeNet-5 on {source} for {args.train_steps} steps")
        model, initial = train_lenet(args)
        written.append(save_filter_grid(initial, os.path.join(args.out, "filters_initial.png"),
                                        title="LeNet-5 conv1 before training (random)"))
        tc.save(model.state_dict(), os.path.join(args.out, "trained.safetensors"))
        written.append(os.path.join(args.out, "trained.safetensors"))
        key, weight = "features.0.weight (trained)", model.features[0].weight.detach().numpy()
        args.model = "lenet5"

    print(f"{key}: {weight.shape[0]} filters of {weight.shape[1]}x{weight.shape[2]}x{weight.shape[3]}"
          f" (C_in x kH x kW); weights in [{weight.min():.3f}, {weight.max():.3f}]")
    written.append(save_filter_grid(weight, os.path.join(args.out, "filters.png"),
                                    title=f"{key}: {weight.shape[0]} filters of "
                                          f"{weight.shape[1]}x{weight.shape[2]}x{weight.shape[3]}"))

    if model is not None:
        model.eval()
        conv = models.first_conv(model)
        size = 28 if args.model == "lenet5" else 224 if args.model not in ("resnet20", "resnet32", "resnet44",
                                                                             "resnet56", "resnet110") else 32
        x, what = one_input(args.model, conv.in_channels, size, args)
        names = dict(model.named_modules())
        if args.layers:
            layers = [n.strip() for n in args.layers.split(",")]
        else:        # the first conv and the activation right after it
            order = [n for n, m in model.named_modules() if n and not any(True for _ in m.children())]
            first = next(n for n in order if names[n] is conv)
            layers = order[order.index(first): order.index(first) + 2]
        maps = activation_maps(model, tc.Tensor(x), layers)
        for n, a in maps.items():
            print(f"  activation of {n} ({type(names[n]).__name__}) for {what}: shape {a.shape}")
        written.append(save_activation_maps(maps, os.path.join(args.out, "activations.png"),
                                            title=f"{args.model}: {', '.join(maps)} for {what}",
                                            max_channels=16))
    print("wrote " + ", ".join(written))
    return {"weight_shape": weight.shape, "files": written}


if __name__ == "__main__":
    main()
