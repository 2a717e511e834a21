import numpy as np
import pytest

import mmfactor as mf
from mmfactor.errors import InputError
from mmfactor.evaluate import factor_target_table, format_table
from mmfactor.evaluate.reference import RawFeatures


def test_raw_reference_records_and_missing(toy_seq):
    records = mf.evaluate(RawFeatures(), toy_seq, targets=["y", "u1"], missing=["x1"])
    acc = {
        (r["factors"], r["target"], tuple(r["missing"])): r["value"]
        for r in records
        if r["metric"] == "accuracy"
    }
    assert set(f for f, _, _ in acc) == {"specific:x1", "specific:x2", "all"}
    # u1 is a latent only x1 sees: x1's raw features predict it, and dropping x1 loses it
    assert acc[("specific:x1", "u1", ())] > 0.8
    assert acc[("all", "u1", ("x1",))] < acc[("all", "u1", ())] - 0.2
    assert all(r["split"] == "test" and r["method"] == "raw" for r in records)


def test_factor_target_table(toy):
    records = mf.evaluate(RawFeatures(), toy, targets=["y", "u1"])
    table = factor_target_table(records)
    assert table["specific:x1"]["u1"] > table["specific:x2"]["u1"]
    text = format_table(table)
    assert text.splitlines()[0] == "| factors | u1 | y |"


def test_evaluate_validates_names(toy):
    with pytest.raises(InputError, match="^targets: .*no target 'nope'") as err:
        mf.evaluate(RawFeatures(), toy, targets=["nope"])
    assert err.value.argument == "targets"
    # A library error names the Python argument, not the CLI's flag (--missing).
    with pytest.raises(InputError, match="^missing: .*no modality 'x9'") as err:
        mf.evaluate(RawFeatures(), toy, missing=["x9"])
    assert err.value.argument == "missing" and "--" not in str(err.value)
    with pytest.raises(InputError, match="unknown protocol"):
        mf.evaluate(RawFeatures(), toy, protocol="svm")
    with pytest.raises(InputError, match="no factor block 'shared'"):
        mf.evaluate(RawFeatures(), toy, factors=["shared"])


def test_encode_returns_numpy_in_order(toy):
    factors = mf.encode(RawFeatures(), toy, split="test")
    assert isinstance(factors.specific["x1"], np.ndarray)
    assert np.allclose(factors.specific["x1"], toy.arrays["x1"][toy.indices("test")])


def test_latent_table_finds_each_modality_s_own_latents():
    from mmfactor.evaluate.protocol import latent_table

    data = mf.datasets.load("synthetic", n=1500, noise=0.1)
    table = latent_table(RawFeatures(), data)
    assert table["specific:x1"]["unique:x1"] > 0.1
    assert abs(table["specific:x1"]["unique:x2"]) < 0.05  # x1 holds nothing of w_2
    assert table["all"]["shared"] > table["specific:x1"]["shared"]
    with pytest.raises(InputError, match="no ground-truth latents"):
        latent_table(RawFeatures(), mf.datasets.load("nutrimouse"))


def test_shared_encodings_give_the_same_records_with_one_encoding_per_split():
    """evaluate, noise_records and latent_records with one Encodings: the records of three
    separate calls, each clean split encoded once, the noise curve's clean point equal to
    evaluate's score (the same probe)."""
    from mmfactor.evaluate import Encodings, latent_records, noise_records

    data = mf.datasets.load("synthetic", n=600)

    class Counting(RawFeatures):
        calls = 0

        def encode(self, batch):
            Counting.calls += 1
            return super().encode(batch)

    def run(shared):
        model = Counting()
        enc = Encodings(model, data) if shared else None
        records = mf.evaluate(model, data, targets=["mix@0.5"], missing=["x1"], encodings=enc)
        records += noise_records(model, data, "mix@0.5", [0.0, 1.0], encodings=enc)
        records += latent_records(model, data, encodings=enc)
        return records

    Counting.calls = 0
    separate = run(shared=False)
    calls_separate = Counting.calls
    Counting.calls = 0
    together = run(shared=True)
    # Exact: both runs encode the same splits with the same batch size and fit the same
    # probes on identical arrays of identical shapes, in this process (same computation).
    assert together == separate
    # one batch per split here: train, valid, test, test without x1, test with noise
    assert Counting.calls == 5 < calls_separate
    clean = next(
        r["value"]
        for r in together
        if r.get("noise") is None
        and r["factors"] == "all"
        and r["metric"] == "accuracy"
        and r["missing"] == []
        and r["protocol"] == "linear-probe"
    )
    noise0 = next(
        r["value"] for r in together if r.get("noise") == 0.0 and r["metric"] == "accuracy"
    )
    assert noise0 == clean  # exact: level 0 scores the same probe on the same clean encoding
    with pytest.raises(InputError, match="another model"):
        mf.evaluate(RawFeatures(), data, encodings=Encodings(Counting(), data))


def test_raw_reference_projects_images_on_their_principal_components():
    """Images wider than image_components: the coordinates on the train split's principal
    components, the same as scikit-learn's PCA up to each component's sign."""
    from sklearn.decomposition import PCA

    data = mf.datasets.load("trifeatures", size=16, n=200, per_combination=1, cache=False)
    raw = RawFeatures(image_components=6).fit(data)
    assert set(raw.components) == {"x1", "x2"}
    pixels = data.arrays["x1"][data.indices("train")].reshape(-1, 768) / 255
    expected = PCA(6, svd_solver="full").fit(pixels).transform(pixels)
    batch = next(iter(mf.data.batching.make_loader(data, data.indices("train"), 10_000)))
    got = raw.encode(batch).specific["x1"].double().numpy()
    signs = np.sign((got * expected).sum(0))
    np.testing.assert_allclose(got * signs, expected, atol=1e-3)
    # Not fitted, or vectors: flattened as before.
    assert RawFeatures().encode(batch).specific["x1"].shape == (len(got), 768)
    with pytest.raises(InputError, match="image_components"):
        RawFeatures(image_components=-1)


def test_a_block_equal_to_another_is_probed_once():
    """A one-block model's ``all`` is its ``shared``: one probe serves both, and the
    records of the two blocks are equal."""
    from mmfactor.evaluate import Encodings

    data = mf.datasets.load("synthetic", n=600)
    model = mf.methods.build("cca", data.modalities, embed_dim=4)
    mf.fit(model, data, progress=False)
    encoded = Encodings(model, data)
    assert set(encoded.blocks("train")) == {"shared", "all"}
    assert encoded.probe("linear-probe", "shared", "all", 0) is encoded.probe(
        "linear-probe", "shared", "shared", 0
    )
    records = mf.evaluate(model, data, targets=["shared"], encodings=encoded)
    by_block = {
        b: {r["metric"]: r["value"] for r in records if r["factors"] == b}
        for b in ("shared", "all")
    }
    assert by_block["shared"] == by_block["all"]
