"""``redress bench index``: MihIndex against FAISS, measured in the same run.

The data set is ``size`` random hashes, plus planted near-duplicates at every
distance 0..40 from known queries, plus real PDQ hashes of scikit-image's
sample pictures (each stored with its eight dihedral variants as one entry,
queried with resized, brightened and cropped copies). The throughput queries
are random with 1% planted ones, so 99% find nothing, as real traffic does.

Anchors: FAISS ``IndexBinaryFlat`` (a linear scan) and FAISS
``IndexBinaryMultiHash(256, 16, 16)`` with ``nflip = T // 16``, the index and
configuration Hasher-Matcher-Actioner uses. Ground truth for recall is FAISS's
flat range search. Memory is measured twice: the bytes of the structure's own
arrays (Redress) and the process's resident-set growth while building it, with
the peak (VmHWM, reset before each build through /proc/self/clear_refs).
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from redress.index.interfaces import IndexHit
from redress.index.mih import MihIndex

U8Array = npt.NDArray[np.uint8]
PLANTED_PER_DISTANCE = 5
MAX_PLANTED_DISTANCE = 40


@dataclass(frozen=True, slots=True)
class BenchData:
    """Stored hashes with entry IDs, and the query sets."""

    hashes: U8Array
    entry_ids: npt.NDArray[np.int64]
    throughput_queries: U8Array
    recall_queries: U8Array
    real_images: int


@dataclass(slots=True)
class StructureFigures:
    """Every figure measured for one structure (None where it does not apply)."""

    name: str
    build_s: float = 0.0
    rss_growth_bytes: int | None = None
    rss_peak_bytes: int | None = None
    array_bytes: int | None = None
    bytes_per_hash: float = 0.0
    single_lookups_per_s: float = 0.0
    batched_lookups_per_s: float = 0.0
    single_lookups_per_cpu_s: float = 0.0
    batched_lookups_per_cpu_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p50_cpu_ms: float = 0.0
    p99_cpu_ms: float = 0.0
    recall: float = 0.0
    add_visible_ms: float | None = None
    remove_visible_ms: float | None = None
    save_s: float | None = None
    load_s: float | None = None
    snapshot_bytes: int | None = None
    queries_single: int = 0
    queries_batched: int = 0
    notes: list[str] = field(default_factory=list)


def _memory() -> tuple[int, int] | None:
    """(resident, peak resident) bytes of this process, or None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, amount = line.split(":", 1)
            values[key] = int(amount.split()[0]) * 1024
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def _reset_peak() -> None:
    # Off Linux, or where not permitted, the peak then covers the whole run.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _pdq_bytes(bits: npt.NDArray[Any]) -> bytes:
    # pdqhash returns 256 bits most significant first, Meta's hex order.
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()


def real_image_hashes() -> tuple[list[list[bytes]], list[tuple[int, bytes]]]:
    """(per image: its 8 dihedral hashes; (image number, hash of an altered copy) pairs)."""
    import pdqhash
    import skimage.data
    from PIL import Image, ImageEnhance

    names = [
        "astronaut", "brick", "camera", "cat", "clock", "coffee", "coins", "colorwheel",
        "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "microaneurysms",
        "moon", "page", "retina", "rocket", "text",
    ]  # fmt: skip
    stored: list[list[bytes]] = []
    altered: list[tuple[int, bytes]] = []
    for name in names:
        try:
            picture = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        except Exception:  # noqa: BLE001, S112 - a missing sample picture only shrinks the set
            continue
        number = len(stored)
        pixels = np.asarray(picture)
        dihedral, _quality = pdqhash.compute_dihedral(pixels)
        stored.append([_pdq_bytes(h) for h in dihedral])
        w, h = picture.size
        variants = [
            picture.resize((max(16, w // 2), max(16, h // 2))),
            ImageEnhance.Brightness(picture).enhance(1.3),
            picture.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
        ]
        for variant in variants:
            bits, _quality = pdqhash.compute(np.ascontiguousarray(np.asarray(variant)))
            altered.append((number, _pdq_bytes(bits)))
    return stored, altered


def make_data(size: int, queries: int, seed: int = 20261125) -> BenchData:
    """Random hashes, planted near-duplicates at 0..40 bits and real picture hashes."""
    rng = np.random.default_rng(seed)
    random_rows = rng.integers(0, 256, (size, 32), dtype=np.uint8)
    anchors = rng.integers(
        0, 256, ((MAX_PLANTED_DISTANCE + 1) * PLANTED_PER_DISTANCE, 32), dtype=np.uint8
    )
    planted = anchors.copy()
    for i in range(len(anchors)):
        distance = i // PLANTED_PER_DISTANCE
        for bit in rng.choice(256, size=distance, replace=False):
            planted[i, bit // 8] ^= np.uint8(1 << (bit % 8))
    stored_real, altered = real_image_hashes()
    real_rows = np.frombuffer(b"".join(b"".join(s) for s in stored_real), np.uint8).reshape(-1, 32)
    hashes = np.concatenate([random_rows, planted, real_rows])
    ids = np.concatenate(
        [
            np.arange(size + len(planted), dtype=np.int64),
            size + len(planted) + np.repeat(np.arange(len(stored_real), dtype=np.int64), 8),
        ]
    )
    altered_rows = np.frombuffer(b"".join(a for _, a in altered), np.uint8).reshape(-1, 32)
    recall_queries = np.concatenate(
        [anchors, altered_rows, rng.integers(0, 256, (100, 32), dtype=np.uint8)]
    )
    # 99% random queries (no match), 1% planted anchors.
    n_planted = max(1, queries // 100)
    throughput = rng.integers(0, 256, (queries, 32), dtype=np.uint8)
    throughput[rng.choice(queries, size=n_planted, replace=False)] = anchors[
        rng.integers(0, len(anchors), n_planted)
    ]
    return BenchData(hashes, ids, throughput, recall_queries, len(stored_real))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


ROUNDS = 3


def _rate(count: int, work: Callable[[], Any]) -> tuple[float, float]:
    """Median lookups per wall second and per CPU second over ROUNDS runs of ``work``.

    Per CPU second (all of this process's threads) is the work a lookup costs,
    whatever else shares the cores; per wall second is what a caller sees now.
    """
    wall, cpu = [], []
    for _ in range(ROUNDS):
        w0, c0 = time.perf_counter(), time.process_time()
        work()
        wall.append(count / (time.perf_counter() - w0))
        cpu.append(count / max(time.process_time() - c0, 1e-9))
    return statistics.median(wall), statistics.median(cpu)


def _latencies(lookup: Callable[[int], Any], count: int) -> tuple[float, float, float, float]:
    """p50/p99 wall and p50/p99 CPU milliseconds of ``count`` single lookups.

    CPU time (this thread's) excludes time the scheduler gave to other jobs, so
    it shows the lookup's own cost on a shared machine; wall time is what a
    caller waits.
    """
    wall, cpu = [], []
    for i in range(count):
        w0, c0 = time.perf_counter(), time.thread_time()
        lookup(i)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return (*_percentiles(wall), *_percentiles(cpu))


def _measure_build(build: Callable[[], Any]) -> tuple[Any, float, int | None, int | None]:
    gc.collect()
    _reset_peak()
    before = _memory()
    started = time.perf_counter()
    structure = build()
    elapsed = time.perf_counter() - started
    after = _memory()
    if before is None or after is None:
        return structure, elapsed, None, None
    return structure, elapsed, after[0] - before[0], after[1] - before[0]


def _truth_from_faiss(found: Any, ids: Any) -> list[list[IndexHit]]:
    lims, dist, labels = found
    results = []
    for i in range(len(lims) - 1):
        best: dict[int, int] = {}
        for row, d in zip(labels[lims[i] : lims[i + 1]], dist[lims[i] : lims[i + 1]], strict=True):
            entry = int(ids[int(row)])
            best[entry] = min(best.get(entry, 999), int(d))
        results.append(sorted(IndexHit(d, e) for e, d in best.items()))
    return results


def _recall(found: list[list[IndexHit]], truth: list[list[IndexHit]]) -> float:
    wanted = sum(len(t) for t in truth)
    got = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    exact_extra = sum(len(set(f) - set(t)) for f, t in zip(found, truth, strict=True))
    if exact_extra:
        return -1.0  # reported hits that are not true hits: never acceptable
    return got / wanted if wanted else 1.0


def bench_redress(
    data: BenchData, threshold: int, truth: list[list[IndexHit]], latency_queries: int
) -> StructureFigures:
    """Build, query, update and snapshot a MihIndex."""
    fig = StructureFigures("redress MihIndex")
    cores = os.cpu_count() or 1
    index, fig.build_s, fig.rss_growth_bytes, fig.rss_peak_bytes = _measure_build(
        lambda: MihIndex.from_arrays(data.entry_ids.copy(), data.hashes.copy(), threads=cores)
    )
    stats = index.stats()
    fig.array_bytes = stats.nbytes
    fig.bytes_per_hash = stats.nbytes / len(data.hashes)
    fig.notes.append(f"chunks {stats.chunk_widths}")
    queries = data.throughput_queries
    index.search_many(queries[:50], threshold, threads=1)  # warm the caches and the planner
    fig.single_lookups_per_s, fig.single_lookups_per_cpu_s = _rate(
        len(queries), lambda: index.search_many(queries, threshold, threads=1)
    )
    fig.batched_lookups_per_s, fig.batched_lookups_per_cpu_s = _rate(
        len(queries), lambda: index.search_many(queries, threshold, threads=cores)
    )
    fig.queries_single = fig.queries_batched = len(queries)
    raw = [row.tobytes() for row in queries[:latency_queries]]
    fig.p50_ms, fig.p99_ms, fig.p50_cpu_ms, fig.p99_cpu_ms = _latencies(
        lambda i: index.search(raw[i], threshold), len(raw)
    )
    fig.recall = _recall(index.search_many(data.recall_queries, threshold), truth)
    # Add/remove: time from the call until a search sees the change.
    rng = np.random.default_rng(7)
    adds, removes = [], []
    base_id = int(data.entry_ids.max()) + 1
    for i in range(200):
        fresh = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
        started = time.perf_counter()
        index.add(base_id + i, [fresh])
        seen = index.search(fresh, 0)
        adds.append(time.perf_counter() - started)
        assert seen == [IndexHit(0, base_id + i)]
        started = time.perf_counter()
        index.remove(base_id + i)
        gone = index.search(fresh, 0)
        removes.append(time.perf_counter() - started)
        assert gone == []
    fig.add_visible_ms = statistics.median(adds) * 1e3
    fig.remove_visible_ms = statistics.median(removes) * 1e3
    fig.notes.append(
        f"add/remove visible p99 {_percentiles(adds)[1]:.3f}/{_percentiles(removes)[1]:.3f} ms"
    )
    with tempfile.TemporaryDirectory(prefix="redress-bench-") as folder:
        path = Path(folder) / "bench.pdqx"
        started = time.perf_counter()
        index.save(path)
        fig.save_s = time.perf_counter() - started
        fig.snapshot_bytes = path.stat().st_size
        started = time.perf_counter()
        copied = MihIndex.load(path, mmap=False)
        copy_s = time.perf_counter() - started
        del copied
        gc.collect()
        started = time.perf_counter()
        loaded = MihIndex.load(path)  # the default: memory-mapped, checksums verified
        fig.load_s = time.perf_counter() - started
        fig.notes.append(f"load into private memory (mmap=False) {copy_s:.2f} s")
        reloaded_recall = _recall(loaded.search_many(data.recall_queries, threshold), truth)
        fig.notes.append(f"recall after reload {reloaded_recall:.4f}")
    gc.collect()
    return fig


def bench_faiss(
    kind: str,
    data: BenchData,
    threshold: int,
    truth: list[list[IndexHit]] | None,
    single_queries: int,
    batched_queries: int,
    latency_queries: int,
) -> tuple[StructureFigures, list[list[IndexHit]]]:
    """Build and query a FAISS anchor; returns figures and its answers on the recall set."""
    import faiss

    cores = os.cpu_count() or 1
    if kind == "flat":
        fig = StructureFigures("FAISS IndexBinaryFlat")

        def build() -> Any:
            index = faiss.IndexBinaryFlat(256)
            index.add(data.hashes)
            return index
    else:
        fig = StructureFigures("FAISS IndexBinaryMultiHash(256,16,16) (HMA)")

        def build() -> Any:
            index = faiss.IndexBinaryMultiHash(256, 16, 16)
            index.nflip = threshold // 16  # what HMA sets
            index.add(data.hashes)
            return index

    index, fig.build_s, fig.rss_growth_bytes, fig.rss_peak_bytes = _measure_build(build)
    if fig.rss_growth_bytes is not None:
        fig.bytes_per_hash = fig.rss_growth_bytes / len(data.hashes)
    queries = data.throughput_queries
    radius = threshold + 1  # FAISS binary range search keeps distances < radius
    faiss.omp_set_num_threads(1)
    single = queries[:single_queries]
    fig.single_lookups_per_s, fig.single_lookups_per_cpu_s = _rate(
        len(single), lambda: index.range_search(single, radius)
    )
    fig.p50_ms, fig.p99_ms, fig.p50_cpu_ms, fig.p99_cpu_ms = _latencies(
        lambda i: index.range_search(queries[i : i + 1], radius),
        min(latency_queries, single_queries),
    )
    faiss.omp_set_num_threads(cores)
    batch = queries[:batched_queries]
    fig.batched_lookups_per_s, fig.batched_lookups_per_cpu_s = _rate(
        len(batch), lambda: index.range_search(batch, radius)
    )
    fig.queries_single, fig.queries_batched = len(single), len(batch)
    answers = _truth_from_faiss(index.range_search(data.recall_queries, radius), data.entry_ids)
    fig.recall = _recall(answers, truth) if truth is not None else 1.0
    fig.add_visible_ms = fig.build_s * 1e3
    fig.notes.append("add/remove visible = full rebuild, as HMA re-builds and re-ships its index")
    return fig, answers


def _isolated(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a forked child so each structure's memory is measured from a clean heap.

    Memory freed by one structure stays in the allocator's free lists, so the next
    structure built in the same process would appear to cost nothing. Off Linux
    (no fork) it runs in this process and the memory figures are rougher.
    """
    if not hasattr(os, "fork"):
        return work()
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results: Any = context.SimpleQueue()

    def child() -> None:
        try:
            results.put(("ok", work()))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, which re-raises
            results.put(("error", f"{type(exc).__name__}: {exc}"))

    process = context.Process(target=child)
    process.start()
    status, value = results.get()
    process.join()
    if status != "ok":
        raise RuntimeError(f"benchmark step failed: {value}")
    return value


def run(
    size: int,
    threshold: int,
    queries: int,
    *,
    latency_queries: int = 1000,
    anchor_queries: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark; returns a JSON-ready report."""
    say = progress or (lambda _message: None)
    say(f"generating {size:,} random hashes, planted near-duplicates and picture hashes")
    data = make_data(size, queries)
    # Anchor query counts shrink as the anchors slow down with size, to keep runs short.
    flat_queries = anchor_queries or max(20, min(queries, int(2e8 // max(size, 1))))
    mh_queries = anchor_queries or max(50, min(queries, int(2e9 // max(size, 1))))
    say(f"FAISS IndexBinaryFlat ({flat_queries} queries) and ground truth")
    flat, truth = _isolated(
        lambda: bench_faiss(
            "flat", data, threshold, None, flat_queries, flat_queries * 2, latency_queries
        )
    )
    say(f"FAISS IndexBinaryMultiHash ({mh_queries} queries)")
    multihash, _ = _isolated(
        lambda: bench_faiss(
            "multihash", data, threshold, truth, mh_queries, mh_queries * 2, latency_queries
        )
    )
    say(f"Redress MihIndex ({queries} queries)")
    redress = _isolated(lambda: bench_redress(data, threshold, truth, latency_queries))
    return {
        "size": len(data.hashes),
        "random_hashes": size,
        "planted": (MAX_PLANTED_DISTANCE + 1) * PLANTED_PER_DISTANCE,
        "real_pictures": data.real_images,
        "threshold": threshold,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "recall_queries": len(data.recall_queries),
        "true_hits": sum(len(t) for t in truth),
        "structures": [asdict(redress), asdict(multihash), asdict(flat)],
    }


ROWS: list[tuple[str, str, bool]] = [
    # (field, label, higher is better)
    ("build_s", "build (s)", False),
    ("rss_growth_bytes", "RSS growth (MB)", False),
    ("rss_peak_bytes", "peak RSS during build (MB)", False),
    ("bytes_per_hash", "bytes per hash", False),
    ("single_lookups_per_s", "lookups/s, 1 thread", True),
    ("batched_lookups_per_s", "lookups/s, batched, all cores", True),
    ("single_lookups_per_cpu_s", "lookups per CPU-second, 1 thread", True),
    ("batched_lookups_per_cpu_s", "lookups per CPU-second, batched", True),
    ("p50_ms", "p50 single lookup (ms)", False),
    ("p99_ms", "p99 single lookup (ms)", False),
    ("p50_cpu_ms", "p50 single lookup, CPU (ms)", False),
    ("p99_cpu_ms", "p99 single lookup, CPU (ms)", False),
    ("recall", "recall vs brute force", True),
    ("add_visible_ms", "add visible (ms)", False),
    ("remove_visible_ms", "remove visible (ms)", False),
    ("save_s", "snapshot save (s)", False),
    ("load_s", "snapshot load, mmap + CRC (s)", False),
]


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name.endswith("_bytes"):
        return f"{value / 1e6:,.1f}"
    if isinstance(value, float):
        return f"{value:,.4f}" if value < 10 else f"{value:,.0f}"
    return str(value)


def format_report(report: dict[str, Any]) -> str:
    """The human table: Redress beside each anchor, with Redress's advantage as a ratio."""
    redress, multihash, flat = report["structures"]
    lines = [
        f"index bench: {report['size']:,} hashes ({report['random_hashes']:,} random, "
        f"{report['planted']} planted at 0..40 bits, {report['real_pictures']} pictures x 8 "
        f"dihedral), threshold {report['threshold']}, {report['cores']} cores, "
        f"load average at the end {report.get('load_average')}",
        f"{'figure':34} {'Redress':>12} {'HMA MultiHash':>14} {'ratio':>8} "
        f"{'FAISS Flat':>12} {'ratio':>8}",
    ]
    for key, label, higher in ROWS:
        ours = redress.get(key)
        row = f"{label:34} {_cell(key, ours):>12}"
        for anchor in (multihash, flat):
            theirs = anchor.get(key)
            ratio = "-"
            comparable = isinstance(ours, int | float) and isinstance(theirs, int | float)
            if comparable and key != "recall" and ours > 0 and theirs > 0:
                ratio = f"{(ours / theirs if higher else theirs / ours):,.1f}x"
            width = 14 if anchor is multihash else 12
            row += f" {_cell(key, theirs):>{width}} {ratio:>8}"
        lines.append(row)
    lines.append(
        f"ratio = how many times better Redress is than the anchor (same run); lookups/s are "
        f"medians of {ROUNDS} rounds; CPU latency excludes time the scheduler gave other jobs"
    )
    for structure in (redress, multihash, flat):
        notes = "; ".join(structure["notes"])
        lines.append(
            f"{structure['name']}: {structure['queries_single']} single / "
            f"{structure['queries_batched']} batched queries; {notes}"
        )
    if redress.get("snapshot_bytes"):
        lines.append(f"snapshot file {redress['snapshot_bytes'] / 1e6:,.1f} MB")
    return "\n".join(lines)
