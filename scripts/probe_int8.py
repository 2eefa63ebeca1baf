"""Would int8 make the embedder fast enough? Parity and query latency of quantised exports.

Quantises the configured model's ONNX export (from `qiao model prepare`) in a temporary folder
and measures, for each variant, against the fp32 export:

- the worst and mean cosine of query vectors (every XQuAD question, both languages) and passage
  vectors (every XQuAD paragraph): Qiao's parity bar is cosine >= 0.999 for every text;
- single-query latency (XQuAD questions, median), variants taking turns in blocks of 25;
- throughput on the paragraphs in padded batches of 16 (tokens/s, best of 2 rounds).

Variants: ORT dynamic int8 of every matrix product ("int8 all"), of the attention projections
only ("int8 attention"), and every product after SmoothQuant-style scale migration, calibrated
on the paragraphs of `corpus/` (alpha 0.5 and 0.8; the per-channel maximum of each product's
input is moved into its weight rows by an inserted Mul).

    .venv/bin/python scripts/probe_int8.py [--xquad-dir ../shared/xquad] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
from onnx import helper, numpy_helper
from onnxruntime.quantization import (  # type: ignore[import-untyped]
    QuantType,
    quantize_dynamic,
)
from tokenizers import Tokenizer

from index import OUTPUT_NAME, IndexSettings, export_onnx, onnx_dir_for, prepare_model

REPO = Path(__file__).resolve().parent.parent
BLOCK = 25


def session(path: Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def mean_pooled(sess: Any, ids: list[np.ndarray]) -> np.ndarray:
    out = []
    for row in ids:
        (tokens,) = sess.run([OUTPUT_NAME], {"input_ids": row, "attention_mask": np.ones_like(row)})
        vector = tokens[0].mean(axis=0)
        out.append(vector / np.linalg.norm(vector))
    return np.asarray(out)


def quantised(source: Path, target: Path, nodes: list[str] | None) -> None:
    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,  # 7-bit weights: AVX2 without VNNI saturates int16 sums otherwise
        op_types_to_quantize=["MatMul", "Attention"],
        nodes_to_quantize=nodes,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def smoothed(source: Path, target: Path, alpha: float, calibration: list[np.ndarray]) -> None:
    """A copy of `source` where each product X·W becomes (X/s)·(s·W), s per input channel."""
    model = onnx.load(source)
    weights = {i.name: i for i in model.graph.initializer}
    products = [
        n
        for n in model.graph.node
        if n.op_type in ("MatMul", "Attention") and n.input[1] in weights
    ]
    inputs = sorted({n.input[0] for n in products})
    probe = onnx.load(source)
    for name in inputs:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    peak: dict[str, np.ndarray] = {}
    for row in calibration:
        values = sess.run(inputs, {"input_ids": row, "attention_mask": np.ones_like(row)})
        for name, value in zip(inputs, values, strict=True):
            m = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            peak[name] = np.maximum(peak[name], m) if name in peak else m
    order = []
    for node in model.graph.node:
        if node in products:
            w = numpy_helper.to_array(weights[node.input[1]])
            scale = np.maximum(peak[node.input[0]], 1e-5) ** alpha
            scale = (scale / np.maximum(np.abs(w).max(axis=1), 1e-5) ** (1 - alpha)).astype(
                np.float32
            )
            weights[node.input[1]].CopyFrom(
                numpy_helper.from_array(w * scale[:, None], node.input[1])
            )
            inverse = f"{node.name}_smooth_inverse"
            model.graph.initializer.append(numpy_helper.from_array(1 / scale, inverse))
            scaled = f"{node.input[0]}_smoothed_for_{node.name}"
            order.append(helper.make_node("Mul", [node.input[0], inverse], [scaled]))
            node.input[0] = scaled
        order.append(node)
    del model.graph.node[:]
    model.graph.node.extend(order)
    onnx.save(model, target)


def padded_batches(rows: list[np.ndarray], size: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """Token-id rows sorted longest first, in padded batches of `size` with their masks."""
    ordered = sorted(rows, key=lambda r: -r.shape[1])
    batches = []
    for start in range(0, len(ordered), size):
        group = ordered[start : start + size]
        width = group[0].shape[1]
        ids = np.ones((len(group), width), np.int64)  # 1 = <pad> in XLM-R's vocabulary
        mask = np.zeros((len(group), width), np.int64)
        for i, row in enumerate(group):
            ids[i, : row.shape[1]] = row[0]
            mask[i, : row.shape[1]] = 1
        batches.append((ids, mask))
    return batches


def load_texts(xquad_dir: Path) -> tuple[list[str], list[str]]:
    questions: list[str] = []
    paragraphs: list[str] = []
    for lang in ("en", "zh"):
        data = json.loads((xquad_dir / f"xquad-dev.{lang}.json").read_text(encoding="utf-8"))
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                paragraphs.append(paragraph["context"])
                questions.extend(qa["question"] for qa in paragraph["qas"])
    return questions, paragraphs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad-dir", type=Path, default=REPO.parent / "shared" / "xquad")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=200, help="latency samples per variant")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    settings = IndexSettings()
    model_dir = prepare_model(settings)
    fp32 = export_onnx(model_dir, onnx_dir_for(settings, model_dir))
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()

    def encode(prompt: str, texts: list[str]) -> list[np.ndarray]:
        return [
            np.asarray([e.ids[:512]], np.int64)
            for e in tokenizer.encode_batch([prompt + t for t in texts])
        ]

    questions, paragraphs = load_texts(args.xquad_dir)
    query_ids, passage_ids = encode("query: ", questions), encode("passage: ", paragraphs)
    corpus = [
        p
        for f in sorted((REPO / "corpus").glob("*.txt"))
        for p in f.read_text().split("\n\n")
        if p.strip()
    ]
    calibration = encode("passage: ", corpus)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        graph = onnx.load(fp32, load_external_data=False)
        attention = [n.name for n in graph.graph.node if n.op_type == "Attention"]
        builders: dict[str, Callable[[Path], None]] = {
            "int8 all": lambda out: quantised(fp32, out, None),
            "int8 attention": lambda out: quantised(fp32, out, attention),
        }
        for alpha in (0.5, 0.8):

            def build(out: Path, alpha: float = alpha) -> None:
                smooth = folder / f"smooth-{alpha}.onnx"
                smoothed(fp32, smooth, alpha, calibration)
                quantised(smooth, out, None)
                smooth.unlink()

            builders[f"smoothquant {alpha} + int8"] = build
        paths = {"fp32": fp32}
        for name, builder in builders.items():
            paths[name] = folder / f"{name.replace(' ', '_')}.onnx"
            builder(paths[name])
        sessions = {name: session(path, args.threads) for name, path in paths.items()}
        reference_q = mean_pooled(sessions["fp32"], query_ids)
        reference_p = mean_pooled(sessions["fp32"], passage_ids)
        results: dict[str, dict[str, float]] = {}
        for name, sess in sessions.items():
            cq = (mean_pooled(sess, query_ids) * reference_q).sum(axis=1)
            cp = (mean_pooled(sess, passage_ids) * reference_p).sum(axis=1)
            results[name] = {
                "query_cosine_min": round(float(cq.min()), 5),
                "query_cosine_mean": round(float(cq.mean()), 5),
                "passage_cosine_min": round(float(cp.min()), 5),
                "passage_cosine_mean": round(float(cp.mean()), 5),
            }
        latency: dict[str, list[float]] = {name: [] for name in sessions}
        sample = query_ids[: args.queries]
        for start in range(0, len(sample), BLOCK):
            for name, sess in sessions.items():
                time.sleep(0.2)
                for row in sample[start : start + BLOCK]:
                    t0 = time.perf_counter()
                    sess.run([OUTPUT_NAME], {"input_ids": row, "attention_mask": np.ones_like(row)})
                    latency[name].append(1000 * (time.perf_counter() - t0))
        for name in sessions:
            results[name]["query_ms_median"] = round(statistics.median(latency[name]), 2)
        batches = padded_batches(passage_ids)
        tokens = sum(row.shape[1] for row in passage_ids)
        best: dict[str, float] = {}
        for _ in range(2):  # rounds, variants in turn; each variant's best round counts
            for name, sess in sessions.items():
                t0 = time.perf_counter()
                for ids, mask in batches:
                    sess.run([OUTPUT_NAME], {"input_ids": ids, "attention_mask": mask})
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
        for name in sessions:
            results[name]["paragraph_tokens_per_s"] = round(tokens / best[name])

    print(f"{len(questions)} questions, {len(paragraphs)} paragraphs, {args.threads} threads")
    header = ("q cos min", "q mean", "p cos min", "p mean", "query ms", "batch tok/s")
    print(f"{'variant':<26}" + "".join(f"{h:>10}" for h in header[:-1]) + f"{header[-1]:>12}")
    for name, r in results.items():
        print(
            f"{name:<26}{r['query_cosine_min']:>10}{r['query_cosine_mean']:>10}"
            f"{r['passage_cosine_min']:>10}{r['passage_cosine_mean']:>10}{r['query_ms_median']:>10}"
            f"{r['paragraph_tokens_per_s']:>12}"
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "variants": results}, indent=2))


if __name__ == "__main__":
    main()
