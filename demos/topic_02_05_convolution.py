"""Curriculum topics 2-5: what a convolution is, and what a conv layer does with shapes.

    python demos/topic_02_05_convolution.py --out runs/topic_02_05

Topic 3: the slide's 5x5 binary image convolved with the 3x3 filter [[1,0,1],[0,1,0],[1,0,1]]
         gives a 3x3 feature map whose top-left value is 4 (printed in full, and each value's
         sum of products spelled out for the first one).
Topic 4: a 3x32x32 image and a 3x5x5 filter give one 28x28 activation map; 6 filters give 6;
         a batch of 2 images gives 2 sets: conv2d((2,3,32,32), (6,3,5,5)) -> (2,6,28,28).
Topic 5: stacking Conv -> ReLU -> Conv -> ReLU, and the activation maps before and after ReLU.
Topic 2: a filter shares its weights over every position: parameters of that conv layer
         against a fully connected layer with the same input and output sizes.

Pictures (in --out): topic03_feature_map.png, topic04_activation_maps.png,
topic05_relu_maps.png. Filters in topics 4-5 are hand-made (edges, colour contrast, blur) so
that their maps mean something; the colour image is drawn by the script.
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach.pictures import has_matplotlib, save_activation_maps, save_images
from tinygrad_cnn.teach.summary import count_parameters

IMAGE_5x5 = np.array([[1, 1, 1, 0, 0],
                      [0, 1, 1, 1, 0],
                      [0, 0, 1, 1, 1],
                      [0, 0, 1, 1, 0],
                      [0, 1, 1, 0, 0]], dtype=np.float32)
FILTER_3x3 = np.array([[1, 0, 1],
                       [0, 1, 0],
                       [1, 0, 1]], dtype=np.float32)


def slide_feature_map() -> np.ndarray:
    """The topic-3 example computed with conv2d: (1, 1, 5, 5) * (1, 1, 3, 3) -> (3, 3)."""
    x = tc.Tensor(IMAGE_5x5.reshape(1, 1, 5, 5))
    w = tc.Tensor(FILTER_3x3.reshape(1, 1, 3, 3))
    return F.conv2d(x, w).numpy()[0, 0]


def colour_image(size: int = 32, shift: int = 0) -> np.ndarray:
    """A (3, size, size) picture with edges in several directions and colour contrast."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.zeros((3, size, size), np.float32)
    img[0] = ((xx - 10 - shift) ** 2 + (yy - 11) ** 2 < 49).astype(np.float32)     # red disc
    img[1] = ((xx > 17 + shift) & (yy > 6) & (yy < 26)).astype(np.float32) * 0.8    # green bar
    img[2] = np.clip((xx + yy - 30 - shift) / 20.0, 0, 1)                            # blue ramp
    return img


def hand_made_filters() -> np.ndarray:
    """Six 3x5x5 filters: vertical and horizontal edges, two diagonals, red-green contrast, blur."""
    edge = np.array([-1, -2, 0, 2, 1], np.float32)
    smooth = np.array([1, 4, 6, 4, 1], np.float32) / 16
    w = np.zeros((6, 3, 5, 5), np.float32)
    vertical = np.outer(smooth, edge)
    w[0] = vertical / 3                                   # same on every colour channel
    w[1] = vertical.T / 3
    diag = np.eye(5, dtype=np.float32)[::-1] - np.eye(5, dtype=np.float32)
    w[2] = diag / 3
    w[3] = -diag[::-1] / 3
    blob = np.outer(smooth, smooth)
    w[4, 0], w[4, 1] = blob, -blob                        # red minus green
    w[5] = blob / 3                                       # blur of the brightness
    return w


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_02_05", help="folder for the pictures (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tc.manual_seed(args.seed)
    pictures = has_matplotlib()
    if not pictures:
        print("(matplotlib is not installed: printing the numbers only, no pictures)")

    # ---------------------------------------------------------------- topic 3
    print("Topic 3: what a convolution is")
    print("image (5x5):\n", IMAGE_5x5.astype(int))
    print("filter (3x3):\n", FILTER_3x3.astype(int))
    fmap = slide_feature_map()
    products = IMAGE_5x5[:3, :3] * FILTER_3x3
    print("top-left value = sum(image[0:3, 0:3] * filter) = "
          + " + ".join(str(int(v)) for v in products.ravel()) + f" = {int(products.sum())}")
    print("feature map (3x3):\n", fmap.astype(int))
    if pictures:
        save_images([IMAGE_5x5, FILTER_3x3, fmap], os.path.join(args.out, "topic03_feature_map.png"),
                    titles=["image 5x5", "filter 3x3", "feature map 3x3"], annotate=True,
                    suptitle="conv2d(image, filter): top-left = 4")

    # ---------------------------------------------------------------- topic 4
    print("\nTopic 4: a 3x32x32 image, 3x5x5 filters, one activation map per filter")
    images = np.stack([colour_image(), colour_image(shift=4)])            # (2, 3, 32, 32)
    x = tc.Tensor(images)
    one = F.conv2d(x[:1], tc.Tensor(hand_made_filters()[:1]))
    print(f"1 image (1, 3, 32, 32) * 1 filter (1, 3, 5, 5) -> {tuple(one.shape)}   (32 - 5 + 1 = 28)")
    w6 = tc.Tensor(hand_made_filters())
    six = F.conv2d(x[:1], w6)
    print(f"1 image * 6 filters (6, 3, 5, 5) -> {tuple(six.shape)}")
    maps = F.conv2d(x, w6)
    print(f"2 images (2, 3, 32, 32) * 6 filters -> {tuple(maps.shape)}: 2 sets of 6 activation maps")
    if pictures:
        save_activation_maps({"image 0": maps.numpy()[0], "image 1": maps.numpy()[1]},
                             os.path.join(args.out, "topic04_activation_maps.png"),
                             title="6 filters x 2 images = 2 sets of 6 activation maps (2, 6, 28, 28)",
                             cmap="RdBu_r", symmetric=True)

    # ---------------------------------------------------------------- topic 5
    print("\nTopic 5: stacking convolutions, ReLU makes the real activation map")
    conv1 = nn.Conv2d(3, 6, 5)
    conv1.weight.data[...] = hand_made_filters()
    conv1.bias.data[...] = 0
    stack = nn.Sequential(conv1, nn.ReLU(), nn.Conv2d(6, 10, 5), nn.ReLU())
    h = x
    for i, layer in enumerate(stack):
        h = layer(h)
        print(f"  after {i} {type(layer).__name__:7s} {tuple(h.shape)}")
    pre = conv1(x).detach().numpy()[0]
    post = np.maximum(pre, 0)
    print(f"ReLU zeroes {100 * float((pre < 0).mean()):.0f}% of the first conv's outputs for image 0")
    if pictures:
        save_activation_maps({"conv": pre, "relu": post}, os.path.join(args.out, "topic05_relu_maps.png"),
                             title="conv1 output and ReLU(conv1 output), image 0", cmap="RdBu_r",
                             symmetric=True)

    # ---------------------------------------------------------------- topic 2
    print("\nTopic 2: parameters are shared in space")
    conv = nn.Conv2d(3, 6, 5)
    fc = nn.Linear(3 * 32 * 32, 6 * 28 * 28)
    n_conv, n_fc = count_parameters(conv), count_parameters(fc)
    print(f"Conv2d(3, 6, 5): 6*3*5*5 + 6 = {n_conv:,} parameters")
    print(f"Linear(3*32*32 -> 6*28*28) with the same input and output sizes: "
          f"{3 * 32 * 32}*{6 * 28 * 28} + {6 * 28 * 28} = {n_fc:,} parameters ({n_fc // n_conv:,}x more)")
    return {"feature_map": fmap, "maps_shape": tuple(maps.shape), "conv_params": n_conv, "fc_params": n_fc}


if __name__ == "__main__":
    main()
