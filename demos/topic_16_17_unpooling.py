"""Curriculum topics 16-17: unpooling, the upsampling that undoes pooling.

    python demos/topic_16_17_unpooling.py --out runs/topic_16_17

Topic 17, the slide's 2x2 input [[1, 2], [3, 4]] made 4x4 two ways:
  * nearest neighbour: each value fills its 2x2 block   (F.interpolate(mode="nearest"), nn.Upsample)
  * "bed of nails": each value in the top-left corner of its block, zeros elsewhere (F.bed_of_nails)
Topic 16, max unpooling: a 4x4 map is max-pooled 2x2 with return_indices=True; the pooled values
go through the "network" (here: replaced by the slide's [[1,2],[3,4]]) and F.max_unpool2d puts
each one back exactly where its maximum came from, zeros elsewhere -- pooling and unpooling kept
symmetric. Also in 1-D, and with an odd size where output_size= is needed.

Picture (in --out): topic17_unpooling.png.
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach.pictures import has_matplotlib, save_images

SMALL = np.array([[1, 2], [3, 4]], dtype=np.float32)
BEFORE_POOL = np.array([[1, 6, 3, 2],
                        [5, 2, 1, 7],
                        [1, 2, 9, 2],
                        [8, 3, 4, 4]], dtype=np.float32)


def unpool_examples():
    """(nearest, bed_of_nails, pooled, indices, unpooled) for the slide's arrays, as NumPy."""
    x = tc.Tensor(SMALL.reshape(1, 1, 2, 2))
    nearest = F.interpolate(x, scale_factor=2, mode="nearest").numpy()[0, 0]
    nails = F.bed_of_nails(x, 2).numpy()[0, 0]
    pooled, indices = F.max_pool2d(tc.Tensor(BEFORE_POOL.reshape(1, 1, 4, 4)), 2, return_indices=True)
    unpooled = F.max_unpool2d(x, indices, 2).numpy()[0, 0]
    return nearest, nails, pooled.numpy()[0, 0], indices.numpy()[0, 0], unpooled


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_16_17", help="folder for the pictures (default: %(default)s)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    nearest, nails, pooled, indices, unpooled = unpool_examples()
    print("Topic 17: unpooling the 2x2 input\n", SMALL.astype(int))
    print("nearest neighbour, 2x2 -> 4x4:\n", nearest.astype(int))
    print("bed of nails, 2x2 -> 4x4:\n", nails.astype(int))

    print("\nTopic 16: max unpooling remembers where the max was")
    print("before pooling (4x4):\n", BEFORE_POOL.astype(int))
    print("max_pool2d(2) values:\n", pooled.astype(int))
    print("indices (flat position of each max in the 4x4 plane):\n", indices)
    print("the decoder's 2x2 values [[1,2],[3,4]] unpooled with those indices:\n", unpooled.astype(int))
    rows, cols = np.divmod(indices.ravel(), 4)
    for v, r, c in zip(SMALL.ravel(), rows, cols):
        print(f"  {int(v)} goes back to row {r}, column {c}")

    print("\nThe same in 1-D, and an odd size that needs output_size=:")
    sig = tc.Tensor(np.array([[[3, 1, 4, 1, 5, 9, 2]]], dtype=np.float32))
    v, i = F.max_pool1d(sig, 2, return_indices=True)
    print(f"  max_pool1d({sig.numpy()[0, 0].astype(int).tolist()}, 2) = {v.numpy()[0, 0].astype(int).tolist()}"
          f", indices {i.numpy()[0, 0].tolist()}  (the 7th sample is dropped by the floor)")
    back = F.max_unpool1d(v, i, 2, output_size=[7])
    print(f"  max_unpool1d(..., output_size=[7]) = {back.numpy()[0, 0].astype(int).tolist()}")

    if has_matplotlib():
        save_images([SMALL, nearest, nails, BEFORE_POOL, unpooled],
                    os.path.join(args.out, "topic17_unpooling.png"),
                    titles=["input 2x2", "nearest neighbour", "bed of nails", "before max-pool",
                            "max-unpooled"],
                    annotate=True, cmap="Oranges", fmt="{:.0f}", cell=1.9,
                    suptitle="unpooling [[1,2],[3,4]]: copies, corners, or where the maxima were")
    else:
        print("(matplotlib is not installed: no picture)")
    return {"nearest": nearest, "bed_of_nails": nails, "unpooled": unpooled, "indices": indices}


if __name__ == "__main__":
    main()
