"""The training levers of benchmarks/RESULTS.md, measured cheaply on frames.

On the posture task, whose single frames tell their clip's class: the posture demo model's CNN
is trained as a frame classifier (its first training stage, about 1 min
per variant at 64 px on 2 cores), and Grad-CAM through that classifier's linear head is
scored on the frames of the localization benchmark's unseen clips, at three depths.

Usage: python benchmarks/frame_levers.py VARIANT [EPOCHS] [SIZE]
  VARIANT: fixed (900 clips every epoch), fresh (a new set every epoch), cutmix (fixed,
  with CutMix: half of the frames get a square of another frame, labels mixed by area).
The "baseline" row of RESULTS.md is `fixed` run at commit eacbff9, before the bystanders.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

from tdexplain.engine.maps import normalize_per_frame, upsample
from tdexplain.metrics import localization
from tdexplain.workbook import data, models, synthetic, training

LAYERS = ("block3_conv4", "block4_conv4", "block5_conv4")


def frame_set(seed, size):
    clips, labels, _ = data.synthetic_dataset(900, 8, size, seed=seed, task="posture")
    return clips.reshape((-1, size, size, 3)).astype(np.float32), np.eye(3, dtype=np.float32)[np.repeat(labels, 8)]


def cutmix(frames, targets, rng):
    """Half of the frames get a square of another frame; their labels are mixed by its area."""
    frames, targets = frames.copy(), targets.copy()
    size, other = frames.shape[1], rng.permutation(len(frames))
    for i in np.flatnonzero(rng.random(len(frames)) < 0.5):
        side = int(size * np.sqrt(rng.uniform(0.2, 0.8)))
        y, x = rng.integers(0, size - side + 1, 2)
        frames[i, y:y + side, x:x + side] = frames[other[i], y:y + side, x:x + side]
        area = side * side / size**2
        targets[i] = (1 - area) * targets[i] + area * targets[other[i]]
    return frames, targets


def main(variant, epochs=12, size=64):
    keras.utils.set_random_seed(0)
    model = models.build_model(frames=8, size=size, width=0.125, gru_units=64, dense_units=128)
    classifier = training.frame_classifier(model)
    classifier.compile(optimizer=keras.optimizers.Adam(3e-4, clipnorm=1.0),
                       loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    frames, targets = frame_set(1, size)
    for epoch in range(epochs):
        if variant == "fresh" and epoch:
            frames, targets = frame_set(100 + epoch, size)
        x, y = cutmix(frames, targets, rng) if variant == "cutmix" else (frames, targets)
        classifier.fit(x, y, batch_size=128, epochs=1, shuffle=True, verbose=0)

    seeds = [base + i for base in (9090, 31337) for i in range(5)]
    scenes = [data.synthetic_clip(label, 8, size, seed, task="posture") for label in synthetic.CLASSES for seed in seeds]
    test = np.concatenate([s.frames for s in scenes]).astype(np.float32)
    masks = np.concatenate([s.mask for s in scenes])[:, None]
    labels = np.repeat([s.label_index for s in scenes], 8)
    accuracy = (classifier.predict(test, verbose=0).argmax(axis=1) == labels).mean()
    cnn, preprocess, head = models.backbone_of(model), classifier.layers[1], classifier.layers[-1]
    scores = {}
    for layer in LAYERS:
        inner = keras.Model(cnn.inputs, [cnn.get_layer(layer).output, cnn.outputs[0]])
        with tf.GradientTape() as tape:
            activations, features = inner(preprocess(tf.constant(test)))
            log_probabilities = tf.math.log(head(features) + 1e-9)
            score = tf.reduce_sum(tf.gather(log_probabilities, labels, batch_dims=1))
        gradients = tape.gradient(score, activations).numpy()
        cam = np.maximum(np.einsum("nhwk,nk->nhw", activations.numpy(), gradients.mean(axis=(1, 2))), 0)
        maps = normalize_per_frame(upsample(cam, size))[:, None]
        found = localization.localization(maps, masks)
        scores[layer] = (np.nanmean(found["pointing_game"]),
                         np.nanmean(found["energy_inside"]) / np.nanmean(found["chance"]))
    print(f"{variant}, {epochs} epochs, {size} px: frame accuracy {accuracy:.3f}; Grad-CAM "
          + ", ".join(f"{layer} {p:.2f} / {e:.1f}x" for layer, (p, e) in scores.items()))


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
