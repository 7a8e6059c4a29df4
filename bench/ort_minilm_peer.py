# ORT peer for the latency check: a MiniLM-L6-shaped BERT (random init, all-MiniLM-L6-v2's config) exported to ONNX, timed with ONNX Runtime.
import argparse, json, os, time, sys
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="ort.json")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--requests", type=int, default=200)
a = ap.parse_args()
res = {"threads": a.threads}
import torch, onnxruntime as ort
from transformers import BertConfig, BertModel
res["onnxruntime"] = ort.__version__
res["torch"] = torch.__version__
torch.manual_seed(0)
cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                 max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu", attn_implementation="eager")
model = BertModel(cfg).eval()
path = "/tmp/minilm_shape.onnx"
ids = torch.ones(1, 32, dtype=torch.long); mask = torch.ones(1, 32, dtype=torch.long); types = torch.zeros(1, 32, dtype=torch.long)
dyn = {n: {0: "batch", 1: "seq"} for n in ["input_ids", "attention_mask", "token_type_ids"]}
dyn["last_hidden_state"] = {0: "batch", 1: "seq"}; dyn["pooler_output"] = {0: "batch"}
exported = None
for dynamo in (False, True):
    try:
        torch.onnx.export(model, (ids, mask, types), path, input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state", "pooler_output"], dynamic_axes=dyn, opset_version=17, dynamo=dynamo)
        exported = "dynamo" if dynamo else "torchscript"
        break
    except Exception as e:
        print(f"export (dynamo={dynamo}) failed: {type(e).__name__}: {e}", file=sys.stderr)
res["exporter"] = exported
so = ort.SessionOptions()
so.intra_op_num_threads = a.threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
rows = []
for T in (32, 64, 128):
    for B in (1, 16):
        rng = np.random.default_rng(1)
        feed = {"input_ids": rng.integers(1000, 29000, size=(B, T)).astype(np.int64),
                "attention_mask": np.ones((B, T), np.int64), "token_type_ids": np.zeros((B, T), np.int64)}
        feed["token_type_ids"][:, T // 2:] = 1
        ts = []
        for r in range(20 + a.requests):
            t0 = time.perf_counter(); sess.run(None, feed); t1 = time.perf_counter()
            if r >= 20: ts.append((t1 - t0) * 1000)
        ts.sort()
        p = lambda q: float(np.percentile(ts, q * 100))
        rows.append({"engine": "ort", "batch": B, "seq": T, "p50_ms": round(p(0.5), 3), "p99_ms": round(p(0.99), 3)})
        print(f"latency ort      B {B:2d} T {T:3d}: p50 {p(0.5):8.3f} ms  p99 {p(0.99):8.3f} ms", flush=True)
res["latency"] = rows
json.dump(res, open(a.out, "w"), indent=1)
