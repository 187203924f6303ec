import json

import h5py
import keras
import numpy as np
import pytest

from tdexplain import load_model
from tdexplain.engine import shapes
from tdexplain.workbook import architecture, data, models, synthetic, training

VGG19_NAMES = [
    "block1_conv1", "block1_conv2", "block1_pool", "block2_conv1", "block2_conv2", "block2_pool",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4", "block3_pool",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4", "block4_pool",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4", "block5_pool",
]


def _gru_parameters(inputs, units):
    # Keras' GRU (reset_after=True): 3 gates, input and recurrent kernels, two biases each.
    return 3 * (inputs * units + units * units + 2 * units)


def test_paper_size_model_matches_keras_vgg19():
    model = models.build_model(frames=8, size=224)
    reference = keras.applications.VGG19(include_top=False, weights=None, pooling="avg",
                                         input_shape=(224, 224, 3))
    cnn = models.backbone_of(model)
    # VGG19's layer names (Keras numbers the input and pooling names when built twice).
    assert [l.name for l in cnn.layers if l.name.startswith("block")] == VGG19_NAMES
    assert [l.name for l in reference.layers if l.name.startswith("block")] == VGG19_NAMES
    assert [type(l) for l in cnn.layers] == [type(l) for l in reference.layers]
    assert [l.output.shape for l in cnn.layers] == [l.output.shape for l in reference.layers]
    assert cnn.count_params() == reference.count_params() == 20_024_384
    # One TimeDistributed layer; GRU 1024 with 50% dropout; 3 Dense + Dropout(0.5) blocks.
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds.count("TimeDistributed") == 1
    gru = model.get_layer("gru")
    assert gru.units == 1024 and gru.dropout == 0.5
    assert [model.get_layer(f"dropout_{i}").rate for i in (1, 2, 3)] == [0.5] * 3
    expected = (reference.count_params() + _gru_parameters(512, 1024)
                + (1024 * 512 + 512) + 2 * (512 * 512 + 512) + (512 * 3 + 3))
    assert model.count_params() == expected
    assert model.output_shape == (None, 3)


def test_course_size_model_keeps_the_names_with_fewer_filters():
    model = models.build_model(frames=8, size=64, width=0.125, gru_units=64)
    cnn = models.backbone_of(model)
    convolutions = [l for l in cnn.layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.name for l in cnn.layers if l.name.startswith("block")] == VGG19_NAMES
    assert [l.filters for l in convolutions] == [8] * 2 + [16] * 2 + [32] * 4 + [64] * 8
    assert model.get_layer("gru").units == 64


@pytest.mark.both_backends
def test_clip_shapes_through_the_model():
    model = models.build_model(frames=3, size=32, width=0.0625, gru_units=4, dense_blocks=2)
    description = architecture.describe(model)
    stages = dict(zip(description.stages["stage"], description.stages["shape"]))
    assert stages["input clip"] == "(N, 3, 32, 32, 3)"
    assert stages["time_distributed_vgg19 / block5_pool"] == "(N, 3, 1, 1, 32)"
    assert stages["gru"] == "(N, 4)" and stages["class_probabilities"] == "(N, 3)"
    assert description.parameters["total"] == model.count_params()
    assert description.parameters["backbone"] + description.parameters["head"] == model.count_params()
    assert "block5_conv4" in set(description.backbone["layer"])
    assert "Backbone" in str(description) and "<table" in description._repr_html_()
    fig = architecture.plot_architecture(model)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "GRU" in texts and "shooting" in texts and "3 frames" in texts
    pools = [t for t in fig.axes[0].texts if t.get_text() == "avg\npool"]  # inside the wrapper's box
    after = [t for t in architecture.plot_architecture(models.pool_after_wrapper(model)).axes[0].texts
             if t.get_text() == "avg\npool"]  # moved after it
    assert len(pools) == len(after) == 1 and pools[0].get_position()[0] < after[0].get_position()[0]


def test_imagenet_weights_load_from_the_keras_cache(tmp_path, monkeypatch):
    """The published file is a legacy HDF5 of keras.applications.VGG19(include_top=False)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    source = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    from keras.src.legacy.saving import legacy_h5_format

    path = models.imagenet_weights_path()
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    model = models.build_model(frames=2, size=32, weights="imagenet", gru_units=4, dense_blocks=1)
    cnn = models.backbone_of(model)
    convolutions = [layer for layer in source.layers if layer.weights]
    assert len(convolutions) == 16
    for layer in convolutions:
        for loaded, saved in zip(cnn.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(loaded, saved)
    assert not cnn.trainable  # pretrained weights are frozen by default
    # The same file passed as a path.
    by_path = models.build_model(frames=2, size=32, weights=str(path), gru_units=4, dense_blocks=1)
    np.testing.assert_array_equal(models.backbone_of(by_path).get_layer("block5_conv4").get_weights()[0],
                                  source.get_layer("block5_conv4").get_weights()[0])


def test_missing_imagenet_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    expected = str(tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    with pytest.raises(FileNotFoundError, match=f"Put .* at {expected}"):
        models.build_model(frames=2, size=32, weights="imagenet")
    with pytest.raises(ValueError, match="ImageNet weights exist only for width=1.0"):
        models.build_model(frames=2, size=32, width=0.5, weights="imagenet")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        models.build_model(frames=2, size=32, weights=tmp_path / "nope.h5")


@pytest.mark.both_backends
def test_save_and_load_keep_predictions_and_class_names(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.build_model(frames=3, size=32, width=0.0625, gru_units=4, dense_blocks=2,
                               classes=("calm", "brawl", "gunshot", "theft"))
    clips = data.synthetic_dataset(4, 3, 32, seed=0)[0]
    path = models.save_model(model, tmp_path / "m.keras")
    loaded = load_model(path)
    assert shapes.class_names(loaded) == ("calm", "brawl", "gunshot", "theft")
    np.testing.assert_allclose(models.predict(loaded, clips), models.predict(model, clips), rtol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    (dict(backbone="resnet50"), "unknown backbone 'resnet50'; available: vgg19"),
    (dict(gru_units=0), "gru_units must be an integer >= 1"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(dropout=-0.1), r"dropout must be in \[0, 1\)"),
    (dict(block_dropout=1.0), r"^block_dropout must be in \[0, 1\), got 1.0"),
    (dict(block_dropout="half"), r"^block_dropout must be in \[0, 1\)"),
    (dict(width=0), r"width must be in \(0, 1\]"),
    (dict(frames=0), "frames must be an integer >= 1"),
    (dict(classes=("only",)), "at least two distinct names"),
    (dict(dense_units=[8, 8]), "dense_units must be a positive int or 3 positive ints"),
])
def test_build_rejects_bad_arguments(kwargs, message):
    args = dict(frames=2, size=32, width=0.0625, gru_units=4) | kwargs
    with pytest.raises(ValueError, match=message):
        models.build_model(**args)


def test_the_gru_and_the_dense_blocks_take_their_own_dropout():
    """block_dropout sets each dense block's Dropout, dropout the GRU's; without block_dropout
    one rate serves both (the models built and saved before it existed)."""
    small = dict(frames=2, size=32, width=0.0625, gru_units=4, dense_blocks=2)
    both = models.build_model(**small, dropout=0.25, block_dropout=0.5)
    assert both.get_layer("gru").dropout == 0.25
    assert [both.get_layer(f"dropout_{i}").rate for i in (1, 2)] == [0.5, 0.5]
    shared = models.build_model(**small, dropout=0.25)
    assert shared.get_layer("gru").dropout == 0.25
    assert [shared.get_layer(f"dropout_{i}").rate for i in (1, 2)] == [0.25, 0.25]


def test_predict_rejects_clips_that_do_not_fit():
    model = models.build_model(frames=3, size=32, width=0.0625, gru_units=4, dense_blocks=1)
    with pytest.raises(ValueError, match="must have 3 frames per clip, got 4"):
        models.predict(model, np.zeros((1, 4, 32, 32, 3)))
    with pytest.raises(ValueError, match="frames must be 32x32, got 64x64"):
        models.predict(model, np.zeros((1, 3, 64, 64, 3)))
    with pytest.raises(ValueError, match="RGB"):
        models.predict(model, np.zeros((1, 3, 32, 32, 4)))


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "none.keras")
    fake = tmp_path / "fake.keras"
    fake.write_text("not a zip")
    with pytest.raises(ValueError, match="fake.keras is not a Keras model file"):
        load_model(fake)


def test_scores_on_a_known_confusion():
    true = [0, 0, 0, 1, 1, 2, 2, 2]
    predicted = [0, 0, 1, 1, 1, 2, 0, 2]
    result = training.scores(true, predicted, ("normal", "fight", "shooting"))
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert result["accuracy"] == pytest.approx(6 / 8)
    assert result["per_class"]["normal"]["precision"] == pytest.approx(2 / 3)
    assert result["per_class"]["fight"]["recall"] == pytest.approx(1.0)
    assert result["per_class"]["fight"]["precision"] == pytest.approx(2 / 3)
    f1_normal = 2 * (2 / 3) * (2 / 3) / (4 / 3)
    assert result["per_class"]["normal"]["f1"] == pytest.approx(f1_normal)
    assert result["f1"] == pytest.approx(np.mean([v["f1"] for v in result["per_class"].values()]))


@pytest.mark.both_backends
def test_training_stages_and_metrics_file(tmp_path):
    clips, labels, _ = data.synthetic_dataset(12, 2, 32, seed=0)
    val = data.synthetic_dataset(6, 2, 32, seed=1)[:2]
    config = dict(frames=2, size=32, width=0.0625, gru_units=4, dense_blocks=1)
    result = training.train(config, (clips, labels), val, epochs=1, frame_epochs=1, head_epochs=2,
                            batch_size=4, out=tmp_path / "tiny.keras", progress=False, seed=3)
    saved = json.loads(training.metrics_path(tmp_path / "tiny.keras").read_text())
    assert saved["config"]["build"] == config and saved["config"]["train"]["seed"] == 3
    assert set(saved["history"]) == {"frames", "end_to_end", "head"}
    assert set(saved["validation"]) >= {"accuracy", "precision", "recall", "f1", "per_class",
                                        "confusion_matrix"}
    assert np.sum(saved["validation"]["confusion_matrix"]) == 6
    assert shapes.class_names(load_model(tmp_path / "tiny.keras")) == synthetic.CLASSES
    # Training the head on cached features trains the model's own layers.
    assert result.model.get_layer("gru") is training.head_model(result.model).get_layer("gru")


def test_batches_are_full_and_every_clip_is_trained_on_each_epoch():
    """10 clips in batches of 4: three full batches an epoch (one compiled step, no short last
    batch), every clip in them, the last completed with two clips of the epoch seen twice."""
    clips, labels = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    dataset = training._DrawnEachEpoch(lambda epoch: (clips, labels), batch_size=4, seed=0)
    for epoch in range(3):
        dataset.load(epoch)
        batches = [dataset[i] for i in range(len(dataset))]
        assert [len(y) for _, y in batches] == [4, 4, 4]
        served = np.concatenate([y for _, y in batches])
        assert set(served) == set(labels) and len(served) == 12
        np.testing.assert_array_equal(np.concatenate([x for x, _ in batches])[:, 0], served)
    small = training._DrawnEachEpoch(lambda epoch: (clips[:3], labels[:3]), batch_size=4, seed=0)
    assert len(small) == 1 and sorted(small[0][1]) == [0, 1, 2]
    exact = training._DrawnEachEpoch(lambda epoch: (clips[:8], labels[:8]), batch_size=4, seed=0)
    assert len(exact) == 2 and sorted(np.concatenate([exact[i][1] for i in range(2)])) == list(range(8))


@pytest.mark.both_backends
def test_each_epoch_trains_on_the_set_drawn_for_it():
    """With train_data a function of the epoch, every batch of epoch e comes from draw(e)."""
    served = []

    class Recorded(training._DrawnEachEpoch):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            served.append((self.epoch, set(np.unique(x))))
            return x, y

    def draw(epoch):  # 8 samples whose every value is the epoch that drew them
        return np.full((8, 2), epoch, np.float32), np.arange(8) % 2

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    trained_on = []

    class Batches(keras.callbacks.Callback):  # what the epoch's steps read, batch by batch
        def on_train_batch_end(self, batch, logs=None):
            trained_on.append(served[-1])

    dataset = Recorded(draw, batch_size=4, seed=0)
    model.fit(dataset, epochs=3, verbose=0, callbacks=[dataset.loader(), Batches()])
    assert [epoch for epoch, _ in trained_on] == [0, 0, 1, 1, 2, 2]
    assert all(values == {epoch} for epoch, values in served)


@pytest.mark.both_backends
def test_training_on_a_fresh_set_each_epoch_draws_one_per_epoch(tmp_path):
    drawn = []

    def fresh(epoch):
        drawn.append(epoch)
        return data.synthetic_dataset(6, 2, 32, seed=100 + epoch)[:2]

    config = dict(frames=2, size=32, width=0.0625, gru_units=4, dense_blocks=1)
    result = training.train(config, fresh, epochs=2, frame_epochs=3, head_epochs=1, batch_size=3,
                            progress=False, patience=10)
    # The first set serves epoch 0 of every stage and the head; stages 1 and 3 draw the rest.
    assert drawn == [0, 1, 2, 1]
    assert result.config["train"]["fresh_data_each_epoch"] is True
    with pytest.raises(ValueError, match="training labels must be in 0..2"):
        training.train(config, lambda epoch: (fresh(epoch)[0], np.full(6, 7)), epochs=1,
                       progress=False)


@pytest.mark.both_backends
def test_frame_pretraining_regresses_each_frames_own_targets(monkeypatch):
    """With frame targets, stage 1 fits the frame network to each frame's own row: its validation
    loss is the mean squared error of the network's predictions against the frames' targets."""
    clips, labels, _, poses = data.synthetic_dataset(6, 2, 32, seed=0, task="temporal", with_poses=True)
    val_clips, val_labels, _, val_poses = data.synthetic_dataset(3, 2, 32, seed=1, task="temporal",
                                                                 with_poses=True)
    built, frame_classifier = [], training.frame_classifier
    monkeypatch.setattr(training, "frame_classifier",
                        lambda model, targets=None: built.append(frame_classifier(model, targets)) or built[-1])
    config = dict(frames=2, size=32, width=0.0625, gru_units=4, dense_blocks=1)
    result = training.train(config, (clips, labels, poses), (val_clips, val_labels, val_poses),
                            epochs=0, frame_epochs=2, batch_size=2, progress=False)
    (network,) = built
    predicted = network.predict(val_clips.reshape(-1, 32, 32, 3).astype(np.float32), verbose=0)
    squared_error = np.mean((predicted - val_poses.reshape(6, -1)) ** 2)
    assert squared_error == pytest.approx(min(result.history["frames"]["val_loss"]), rel=1e-4)
    assert "accuracy" not in result.history["frames"]
    assert result.config["train"]["frame_targets"] == poses.shape[-1]
    with pytest.raises(ValueError, match="validation data has no frame targets, the first training set 11"):
        training.train(config, (clips, labels, poses), (val_clips, val_labels), frame_epochs=1,
                       epochs=0, progress=False)
    with pytest.raises(ValueError, match=r"training \(epoch 1\) data has no frame targets, the first .* 11"):
        training.train(config, lambda epoch: (clips, labels, poses)[:3 - epoch], frame_epochs=2,
                       epochs=0, progress=False, patience=5)
    with pytest.raises(ValueError, match=r"training frame targets must be .* \(6, 2\) \+ \(P,\), got \(6, 11\)"):
        training.train(config, (clips, labels, poses[:, 0]), frame_epochs=1, epochs=0, progress=False)
    with pytest.raises(ValueError, match="training data must be .clips, labels. or .clips, labels, frame targets.,"
                       " got 4 elements"):
        training.train(config, data.synthetic_dataset(6, 2, 32, seed=0, with_poses=True), epochs=0,
                       progress=False)


def test_frames_and_their_targets_stay_together():
    """Clip n's frame t and its target row end up at the same index of the frame set."""
    n, frames, p = 3, 4, 2
    code = np.arange(n * frames, dtype=np.float32).reshape(n, frames)  # clip n, frame t -> one number
    clips = np.broadcast_to(code[:, :, None, None, None], (n, frames, 2, 2, 3))
    targets = np.stack([code, -code], axis=-1)
    x, y = training._as_frame_set(clips, np.zeros(n, int), targets)
    assert x.shape == (n * frames, 2, 2, 3) and y.shape == (n * frames, p)
    np.testing.assert_array_equal(x[:, 0, 0, 0], y[:, 0])
    np.testing.assert_array_equal(y[:, 1], -y[:, 0])
    x, y = training._as_frame_set(clips, np.arange(n))
    np.testing.assert_array_equal(y, x[:, 0, 0, 0] // frames)  # each frame labelled with its clip


def test_training_rejects_bad_labels():
    clips = data.synthetic_dataset(3, 2, 32, seed=0)[0]
    config = dict(frames=2, size=32, width=0.0625, gru_units=4, dense_blocks=1)
    with pytest.raises(ValueError, match=r"training labels must be in 0..2, got 0..5"):
        training.train(config, (clips, np.array([0, 1, 5])), epochs=1, progress=False)
    with pytest.raises(ValueError, match="training clips must have 2 frames per clip, got 3"):
        training.train(config, (data.synthetic_dataset(3, 3, 32)[0], np.array([0, 1, 2])),
                       epochs=1, progress=False)
