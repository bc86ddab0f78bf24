"""The training stream: mixing, the global window plan, resume across world sizes and
workers, the block reader (local and S3), lineage, and clear errors for damaged shards."""

import io
import json
import random
import re
import shutil
import tarfile

import numpy as np
import pyarrow.dataset as ds
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import webdataset as wds
from torch.utils.data import DataLoader

from strata.manifests.manifest import ShardError
from strata.train.data import BatchLoader, ConsumedWriter, StreamingWindows, collate
from strata.train.data.blocks import BlockReader
from strata.train.mixing import Interleave, block_order, interleave, quantize


SEQ_LEN = 100  # windows of 101 tokens over blocks of at most 64: most windows have 2-3 pieces


@pytest.fixture(scope="module")
def build(shard_build):
    return shard_build


def windows(out, **kwargs) -> StreamingWindows:
    options = {"seq_len": SEQ_LEN, "extra_token": True, "global_batch": 8, "seed": 3, **kwargs}
    return StreamingWindows(str(out), **options)


def take(loader, steps: int) -> list[dict]:
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == steps:
            break
    return batches


def same_batches(a: list[dict], b: list[dict]) -> None:
    assert [x["step"] for x in a] == [y["step"] for y in b]
    for x, y in zip(a, b):
        assert torch.equal(x["tokens"], y["tokens"]) and torch.equal(x["sample_id"], y["sample_id"])
        assert torch.equal(x["epoch"], y["epoch"]) and x["category"] == y["category"]
        assert list(x["sources"]) == list(y["sources"])


def blocks_by_category(out, manifest) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Every train block's (key, tokens), read with stock WebDataset, in manifest shard order."""
    found = {}
    for category, entry in manifest["categories"].items():
        found[category] = [
            (sample["__key__"], np.load(io.BytesIO(sample["tokens.npy"]), allow_pickle=False))
            for shard in entry["shards"] if shard["split"] == "train"
            for sample in wds.WebDataset(str(out / shard["path"]), shardshuffle=False, empty_check=False)
        ]
    return found


# --------------------------------------------------------------------------- mixing


@pytest.mark.parametrize("seed", range(6))
def test_every_prefix_of_the_interleave_is_within_one_unit_of_each_share(seed):
    rng = random.Random(seed)
    shares = {f"c{i:02d}": rng.random() ** 3 for i in range(rng.choice([2, 3, 7, 22]))}
    mix = Interleave(shares)
    total = sum(shares.values())
    assert all(abs(mix.shares[c] - s / total) <= 1 / mix.period for c, s in shares.items())
    n = min(3 * mix.period, 100_000)
    categories, _ = mix.locate(np.arange(n))
    counts = np.cumsum(np.eye(len(mix.names), dtype=np.int32)[categories], axis=0)
    expected = np.arange(1, n + 1)[:, None] * np.array(list(mix.shares.values()))
    assert np.abs(counts - expected).max() < 1


def test_interleave_ties_go_to_the_first_name_and_weights_are_exact():
    assert interleave({"b": 1, "a": 1}, 4) == ["a", "b", "a", "b"]
    assert interleave({"x": 0.5, "y": 0.25, "z": 0.25}, 4) == ["x", "y", "x", "z"]
    assert quantize({"a": 1e-9, "b": 1.0}) == {"a": 1, "b": 65535}
    assert "gone" not in Interleave({"kept": 1.0, "gone": 0.0}).names


def test_the_interleave_jumps_to_any_unit_without_replaying():
    mix = Interleave({"a": 0.5, "b": 0.3, "c": 0.2 - 1e-6, "d": 1e-6})
    n = 3 * mix.period + 123
    categories, ranks = mix.locate(np.arange(n))
    onehot = np.eye(len(mix.names), dtype=np.int64)[categories]
    before = np.cumsum(onehot, axis=0) - onehot
    assert (ranks == before[np.arange(n), categories]).all()  # rank = earlier units of its category
    assert (mix.counts(n) == onehot.sum(axis=0)).all()
    for k in [mix.period - 1, 10**12 + 7, 2**62 // mix.period]:
        (c,), (rank,) = mix.locate(np.array([k]))
        assert mix.counts(k)[c] == rank
        assert (mix.counts(k + 1) - mix.counts(k)).tolist() == np.eye(len(mix.names), dtype=int)[c].tolist()


def test_block_order_is_a_pure_function_of_seed_epoch_and_category():
    first = block_order(500, seed=1, epoch=0, category="web")
    assert sorted(first) == list(range(500))
    assert (first == block_order(500, seed=1, epoch=0, category="web")).all()
    assert not (first == block_order(500, seed=1, epoch=1, category="web")).all()
    assert not (first == block_order(500, seed=2, epoch=0, category="web")).all()
    assert not (first == block_order(500, seed=1, epoch=0, category="code")).all()


# --------------------------------------------------------------------------- the plan


@pytest.mark.parametrize("weights", [None, {"ArXiv": 0.6, "Books": 0.1, "Pile-CC": 0.3}])
def test_realized_token_shares_are_within_2_percent_over_10k_windows(build, weights):
    out, manifest = build
    stream = windows(out, global_batch=50, weights=weights, end_step=200)
    tokens = {}
    for batch in BatchLoader(stream):
        for category in batch["category"]:
            tokens[category] = tokens.get(category, 0) + batch["tokens"].shape[1]
    total = sum(tokens.values())
    assert total == 10_000 * (SEQ_LEN + 1)
    target = weights or {c: e["share"] for c, e in manifest["categories"].items()}
    for category, share in target.items():
        assert abs(tokens[category] / total - share) < 0.02
        assert abs(tokens[category] / (SEQ_LEN + 1) - stream.plan.mix.shares[category] * 10_000) < 1


def test_windows_reassemble_each_category_stream_in_shuffled_block_order(build):
    """Window u of a category is tokens [u*S, u*S + S + 1) of the concatenation of its blocks,
    pass after pass, pass e in block_order(seed, e); and its sources point at those tokens."""
    out, manifest = build
    blocks = blocks_by_category(out, manifest)
    by_key = {key: tokens for category in blocks.values() for key, tokens in category}
    seen = {c: [] for c in blocks}
    for batch in BatchLoader(windows(out, end_step=150)):
        for tokens, category, sources in zip(batch["tokens"], batch["category"], batch["sources"]):
            seen[category].append((tokens.numpy(), sources))
            assert np.concatenate([by_key[key][start:end] for key, start, end in sources]).tolist() == tokens.tolist()
    for category, found in seen.items():
        n = len(blocks[category])
        stream, epoch = [], 0
        while sum(len(t) for t in stream) < len(found) * SEQ_LEN + 1:
            stream += [blocks[category][i][1] for i in block_order(n, 3, epoch, category)]
            epoch += 1
        assert epoch > 2  # the test crosses pass boundaries
        stream = np.concatenate(stream).astype(np.int64)
        for u, (tokens, _) in enumerate(found):
            assert (tokens == stream[u * SEQ_LEN : u * SEQ_LEN + SEQ_LEN + 1]).all()


def test_mlm_windows_do_not_overlap_and_epochs_count_passes(build):
    out, manifest = build
    stream = windows(out, extra_token=False, weights={"Books": 1.0}, end_step=20)
    batches = list(BatchLoader(stream))
    tokens = torch.cat([b["tokens"] for b in batches])
    assert tokens.shape == (160, SEQ_LEN)
    books = manifest["categories"]["Books"]["tokens"]
    epochs = torch.cat([b["epoch"] for b in batches])
    assert epochs.tolist() == [u * SEQ_LEN // books for u in range(160)]


# --------------------------------------------------------------------------- ranks, workers, resume


def by_step(per_rank: list[list[dict]]) -> list[dict]:
    """The global batches, from each rank's local batches of the same steps."""
    merged = []
    for parts in zip(*per_rank):
        assert len({p["step"] for p in parts}) == 1
        merged.append({
            "step": parts[0]["step"],
            "tokens": torch.cat([p["tokens"] for p in parts]),
            "sample_id": torch.cat([p["sample_id"] for p in parts]),
            "epoch": torch.cat([p["epoch"] for p in parts]),
            "category": [c for p in parts for c in p["category"]],
            "sources": [s for p in parts for s in p["sources"]],
        })
    return merged


@pytest.fixture(scope="module")
def reference(build):
    """30 global batches of 8 from one process."""
    out, _ = build
    return list(BatchLoader(windows(out, world_size=1, rank=0, end_step=30)))


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("world_size, workers", [(1, 0), (2, 2), (4, 1), (8, 3)])
def test_resuming_on_any_world_size_and_worker_count_continues_the_global_order(build, reference, world_size, workers):
    out, _ = build
    per_rank = []
    for rank in range(world_size):
        stream = windows(out, world_size=world_size, rank=rank, start_step=11, end_step=30)
        per_rank.append(list(BatchLoader(stream, num_workers=workers, chunk_tokens=1)))  # 1 step a message
    assert len({len(batches) for batches in per_rank}) == 1  # no rank runs out first
    same_batches(by_step(per_rank), reference[11:])
    ids = [i for batches in per_rank for b in batches for i in b["sample_id"].tolist()]
    assert sorted(ids) == list(range(11 * 8, 30 * 8))  # disjoint and complete


def test_per_window_dataset_in_a_plain_dataloader_with_workers_gives_the_same_batches(build, reference):
    out, _ = build
    stream = windows(out, end_step=30)
    loader = DataLoader(stream, batch_size=stream.local_batch, collate_fn=collate, num_workers=2)
    same_batches(list(loader), reference)
    window = next(iter(windows(out)))
    assert window["tokens"].shape == (SEQ_LEN + 1,) and window["sample_id"] == 0 and window["step"] == 0
    assert window["sources"] == reference[0]["sources"][0]


def test_state_dict_resumes_the_same_batches_and_refuses_another_stream(build, reference):
    out, _ = build
    loader = BatchLoader(windows(out, end_step=30), num_workers=2, chunk_tokens=4 * 8 * 101)
    same_batches(take(loader, 13), reference[:13])
    state = loader.state_dict()
    assert state["step"] == 13
    resumed = BatchLoader(windows(out, end_step=30))
    resumed.load_state_dict(state)
    same_batches(list(resumed), reference[13:])
    with pytest.raises(ValueError, match="another stream"):
        windows(out, seed=4).load_state_dict(state)


def _ddp_rank(rank: int, out: str, rendezvous: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    stream = windows(out, global_batch=6, end_step=25)  # rank and world size from torch.distributed
    ids, steps = [], 0
    for batch in BatchLoader(stream, num_workers=1):
        dist.all_reduce(torch.ones(1))  # a rank with a batch more would hang here
        ids += batch["sample_id"].tolist()
        steps += 1
    everyone = [None, None]
    dist.all_gather_object(everyone, {"ids": ids, "steps": steps})
    if rank == 0:
        with open(results, "w") as f:
            json.dump(everyone, f)
    dist.destroy_process_group()


def test_two_process_ddp_with_gloo_gets_disjoint_complete_equal_slices(build, tmp_path):
    out, _ = build
    results = tmp_path / "results.json"
    mp.spawn(_ddp_rank, args=(str(out), str(tmp_path / "rendezvous"), str(results)), nprocs=2, join=True)
    ranks = json.loads(results.read_text())
    assert [r["steps"] for r in ranks] == [25, 25]
    assert set(ranks[0]["ids"]).isdisjoint(ranks[1]["ids"])
    assert sorted(ranks[0]["ids"] + ranks[1]["ids"]) == list(range(25 * 6))
    assert ranks[0]["ids"][:3] == [0, 1, 2] and ranks[1]["ids"][:3] == [3, 4, 5]


def test_val_split_mixes_the_categories_that_have_val_data(build):
    out, manifest = build
    stream = windows(out, split="val", end_step=5)
    assert set(stream.plan.names) == {c for c, e in manifest["categories"].items() if e["val_tokens"]}
    assert all(key.split("_")[-3] == "val" for b in BatchLoader(stream) for key in b["sources"].block_key)
    with pytest.raises(ValueError, match="Books"):
        windows(out, split="val", weights={"Books": 1.0})


# --------------------------------------------------------------------------- lineage


def consumed_rows(run) -> list[dict]:
    table = ds.dataset(run / "consumed").to_table()
    return table.sort_by([("rank", "ascending"), ("step", "ascending"), ("sample_id", "ascending")]).to_pylist()


def test_consumed_parquet_records_every_piece_and_a_resumed_run_replaces_its_steps(build, tmp_path):
    out, _ = build
    stream = windows(out, end_step=10)
    batches = list(BatchLoader(stream))
    for rank in (0, 1):  # a run on two ranks (both record the same batches here)
        with ConsumedWriter(str(tmp_path), stream.shard_of, rank=rank, world_size=2, flush_every=4) as consumed:
            for batch in batches:
                consumed.write(batch["step"], batch)
    rows = consumed_rows(tmp_path)
    expected = [
        (rank, b["step"], sample_id, key, start, end)
        for rank in (0, 1) for b in batches
        for sample_id, sources in zip(b["sample_id"].tolist(), b["sources"]) for key, start, end in sources
    ]
    columns = ("rank", "step", "sample_id", "block_key", "token_start", "token_end")
    assert [tuple(r[c] for c in columns) for r in rows] == expected
    assert all(r["shard"] == stream.shard_of[r["block_key"]] for r in rows)
    assert len(list((tmp_path / "consumed").glob("part-r00000-*.parquet"))) == 3  # steps 0-3, 4-7, 8-9

    # resumed at step 6 on one rank: rank 0 of 1 clears the old ranks 0 and 1 from step 6 on
    with ConsumedWriter(str(tmp_path), stream.shard_of, rank=0, world_size=1, start_step=6, flush_every=4) as resumed:
        for batch in batches[6:]:
            resumed.write(batch["step"], batch)
    again = consumed_rows(tmp_path)
    assert again == [r for r in rows if r["rank"] == 0 or r["step"] < 6]


# --------------------------------------------------------------------------- object store


def test_windows_stream_from_s3_identical_to_local(build, s3):
    out, _ = build
    s3.put(str(out / "manifest.json"), "strata-test/b/manifest.json")
    s3.put(str(out / "shards"), "strata-test/b/", recursive=True)
    local = list(BatchLoader(windows(out, end_step=12)))
    remote = windows("s3://strata-test/b", end_step=12)
    assert remote.io_threads > 0  # read-ahead on
    same_batches(list(BatchLoader(remote)), local)
    same_batches(list(BatchLoader(windows("s3://strata-test/b", end_step=12), num_workers=1, chunk_tokens=1)), local)


# --------------------------------------------------------------------------- damage


@pytest.fixture
def damaged(build, tmp_path):
    out, manifest = build
    copy = tmp_path / "build"
    shutil.copytree(out / "shards", copy / "shards")
    shutil.copy(out / "manifest.json", copy)
    shard = manifest["categories"]["Books"]["shards"][0]  # Books' only train shard
    return copy, copy / shard["path"], shard


def read_everything(out):
    for _ in BatchLoader(windows(out, weights={"Books": 1.0}, end_step=20)):
        pass


def test_a_missing_shard_is_named(damaged):
    out, tar, _ = damaged
    tar.unlink()
    with pytest.raises(ShardError, match=re.escape(f"{tar}: shard is missing")):
        read_everything(out)


def test_a_missing_block_index_is_named(damaged):
    out, tar, shard = damaged
    (out / shard["index"]).unlink()
    with pytest.raises(ShardError, match=re.escape(shard["index"])):
        read_everything(out)


@pytest.mark.parametrize("where", ["header", "token"])
def test_a_corrupted_byte_is_named_with_its_shard_and_block(damaged, where):
    out, tar, _ = damaged
    with tarfile.open(tar) as archive:
        member = [m for m in archive.getmembers() if m.name.endswith(".tokens.npy")][3]
    data = bytearray(tar.read_bytes())
    if where == "header":
        position = member.offset + 5  # in the member's name: its header checksum no longer adds up
    else:
        npy_header = 10 + int.from_bytes(data[member.offset_data + 8 : member.offset_data + 10], "little")
        position = member.offset_data + npy_header + 1  # high byte of the first token: id >= vocab
    data[position] ^= 0xFF
    tar.write_bytes(bytes(data))
    key = member.name.split(".")[0]
    with pytest.raises(ShardError, match=re.escape(f"{tar}: block {key} ") + ".* corrupt"):
        read_everything(out)


def test_a_truncated_shard_is_named(damaged):
    out, tar, _ = damaged
    tar.write_bytes(tar.read_bytes()[:-3000])
    with pytest.raises(ShardError, match=re.escape(f"{tar}: ") + ".*truncated"):
        read_everything(out)


def test_transient_read_errors_are_retried_then_reported(build, monkeypatch):
    out, _ = build
    stream = windows(out)
    reader = BlockReader(stream.build, stream.table, stream.vocab_size, threads=0, backoff=0.001)
    calls = []
    real = reader.fs.cat_file

    def flaky(path, start=None, end=None):
        calls.append(path)
        if len(calls) <= 2:
            raise ConnectionResetError("connection reset by peer")
        return real(path, start=start, end=end)

    monkeypatch.setattr(reader, "fs", type("Flaky", (), {"cat_file": staticmethod(flaky)})())
    assert len(reader.get(0)) == stream.table.tokens[0] and len(calls) == 3

    def down(path, start=None, end=None):
        raise TimeoutError("read timed out")

    monkeypatch.setattr(reader, "fs", type("Down", (), {"cat_file": staticmethod(down)})())
    uri = stream.table.uris[stream.table.shard[1]]
    with pytest.raises(ShardError, match=re.escape(f"{uri}: reading block {stream.table.keys[1]} failed 4 times")):
        reader.get(1)
